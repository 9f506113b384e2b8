"""gunicorn settings read from the environment (``gunicorn -c python:spotopt.gunicorn_conf``).

``TRUSTED_PROXIES`` is the one list of proxies the platform believes: Django reads ``X-Forwarded-For`` and
``X-Forwarded-Proto`` only from them, and gunicorn its forwarded scheme headers (``--forwarded-allow-ips``). Empty
(the default): no proxy is trusted.

``GUNICORN_TIMEOUT`` (seconds, default 120): a request that plans a cluster of a few thousand pods in line (its first
recommendation, *Recompute*, *Apply*) takes up to a minute or two of CPU; gunicorn's own default of 30 s would kill
the worker and answer a 502. A proxy in front needs a read timeout at least as long.
"""

from spotopt.env import env_int, env_list

forwarded_allow_ips = ",".join(env_list("TRUSTED_PROXIES", []))
timeout = env_int("GUNICORN_TIMEOUT", 120)
