"""``python -m services.alerter``"""

from services.alerter.service import AlerterService
from shared.runtime import service_main

raise SystemExit(service_main("alerter", AlerterService))
