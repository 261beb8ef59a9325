"""services/alerter (F9): turns what goes wrong into webhook alerts, de-duplicated and rate limited.

Reads ``pf:events`` with its own consumer group (``alerter``, created at the stream's end so a
first start does not replay history) and checks workers and the gateway every
``alerts.check_interval_sec``. Rules are pure (rules.py); the service owns Redis and HTTP.
"""
