"""gunicorn settings read from the environment (``gunicorn -c python:spotopt.gunicorn_conf``).

``TRUSTED_PROXIES`` is the one list of proxies the platform believes: Django reads ``X-Forwarded-For`` and
``X-Forwarded-Proto`` only from them, and gunicorn its forwarded scheme headers (``--forwarded-allow-ips``). Empty
(the default): no proxy is trusted.
"""

from spotopt.env import env_list

forwarded_allow_ips = ",".join(env_list("TRUSTED_PROXIES", []))
