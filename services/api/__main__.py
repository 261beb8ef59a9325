from services.api.service import ApiService
from shared.runtime import service_main

raise SystemExit(service_main("api", ApiService))
