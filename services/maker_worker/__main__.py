from services.maker_worker.service import MakerWorkerService
from shared.runtime import service_main

raise SystemExit(service_main("maker_worker", MakerWorkerService, drain_sec=15.0))
