from services.sim_exchange.service import SimExchange
from shared.runtime import service_main

raise SystemExit(service_main("sim_exchange", SimExchange, drain_sec=5.0))
