"""``python -m services.arb_scanner``"""

from services.arb_scanner.service import ArbScannerService
from shared.runtime import service_main

raise SystemExit(service_main("arb_scanner", ArbScannerService))
