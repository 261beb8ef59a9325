"""``python -m services.redeemer``"""

from services.redeemer.service import RedeemerService
from shared.runtime import service_main

raise SystemExit(service_main("redeemer", RedeemerService))
