# Jianhu hub image.
#   docker build -t jianhu .        (or: docker compose build hub)
# Runs `jianhu run`: HTTP API on 8080, HL7 v2 MLLP listener on 2575.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    JIANHU_DATA_DIR=/data

RUN groupadd --system jianhu \
    && useradd --system --gid jianhu --create-home --home-dir /home/jianhu \
       --shell /usr/sbin/nologin jianhu \
    && mkdir -p /data \
    && chown jianhu:jianhu /data

WORKDIR /app

# Dependencies first, so that code changes do not reinstall them: what running needs only
# (requirements-run.lock, at requirements.lock's versions; scripts/lock-run.sh writes it).
COPY requirements-run.lock ./
RUN pip install --no-cache-dir -r requirements-run.lock

# The project itself: pyproject.toml, README.md and the packages (hub, routes,
# store, adapters, fhir_profiles). .dockerignore lets only those into the build
# context, so a package folder that does not exist yet (git keeps no empty
# folders) does not break the build the way an explicit COPY of it would.
COPY . ./
# --no-deps: every dependency is already installed from the lock above.
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info

USER jianhu
VOLUME ["/data"]
EXPOSE 8080 2575
CMD ["jianhu", "run"]
