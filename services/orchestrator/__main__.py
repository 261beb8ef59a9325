from services.orchestrator.service import OrchestratorService
from shared.runtime import service_main

raise SystemExit(service_main("orchestrator", OrchestratorService))
