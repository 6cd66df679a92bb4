# GovConnect gateway image. Build: docker build -t govconnect .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GOVCONNECT_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY govconnect ./govconnect
COPY channels ./channels
COPY search ./search
COPY contacts ./contacts
RUN pip install . \
    && groupadd --system govconnect \
    && useradd --system --gid govconnect --home-dir /app --no-create-home govconnect \
    && mkdir -p /data \
    && chown govconnect:govconnect /data

USER govconnect
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# Configure with GOVCONNECT_* variables (GOVCONNECT_SECRET_KEY is required outside demo mode).
CMD ["govconnect", "serve", "--host", "0.0.0.0", "--port", "8000"]
