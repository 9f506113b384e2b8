FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

RUN apt-get update && apt-get install -y --no-install-recommends libpq5 curl && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN pip install --no-deps -e . \
    && sh docker/build-static.sh \
    && useradd --create-home --uid 1000 spotopt && chown -R spotopt /app
USER spotopt

EXPOSE 8000
# --forwarded-allow-ips comes from TRUSTED_PROXIES (spotopt/gunicorn_conf.py), the list Django trusts too.
CMD ["gunicorn", "spotopt.wsgi:application", "--config", "python:spotopt.gunicorn_conf", \
     "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-"]
