# One image for every emugen process; docker-compose.yml picks each service's command
# (the Procfile's). Python 3.11, like the development machines.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The package with the PostgreSQL driver and s3fs (the landing zone on S3); Faker and numpy
# are pinned in pyproject.toml, so a seed means the same bytes in the container as on a laptop.
COPY pyproject.toml README.md ./
COPY emugen ./emugen
RUN pip install ".[postgres,s3]"

# The presets; compose mounts ./config over this so edits on the host hot-reload.
COPY config ./config

# Celery refuses nothing as root but should not run as root; var/ is the only writable place.
RUN useradd --system --uid 10001 --home-dir /app emugen \
    && mkdir -p /app/var \
    && chown emugen /app/var
USER emugen

EXPOSE 5555 8000
CMD ["emugen", "--help"]
