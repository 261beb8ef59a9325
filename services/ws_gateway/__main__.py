"""``python -m services.ws_gateway``"""

from services.ws_gateway.service import WsGatewayService
from shared.runtime import service_main

raise SystemExit(service_main("ws_gateway", WsGatewayService))
