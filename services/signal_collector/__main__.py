"""``python -m services.signal_collector``"""

from services.signal_collector.service import SignalCollectorService
from shared.runtime import service_main

raise SystemExit(service_main("signal_collector", SignalCollectorService))
