# Herald: one image for every role. The command picks the role:
#   herald api | herald worker | herald migrate | herald sandbox | herald keys create ...
# docker-compose.yml runs `migrate` once, then `api` and `worker` from this same image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ffmpeg from Debian: media probing/transcoding (ffmpeg-python shells out to it).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

# Runtime dependencies first (no dev extras), in their own layer so a source change does not
# reinstall them; then the project itself from a throw-away copy of the source.
COPY pyproject.toml /tmp/herald-src/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/herald-src/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY . /tmp/herald-src
RUN pip install /tmp/herald-src \
    && rm -rf /tmp/herald-src

# Unprivileged runtime user with its own data directory.
RUN groupadd --system --gid 10001 herald \
    && useradd --system --uid 10001 --gid herald --home-dir /var/lib/herald --create-home \
       --shell /usr/sbin/nologin herald
WORKDIR /var/lib/herald

ENV HERALD_HOST=0.0.0.0 \
    HERALD_API_PORT=8000 \
    HERALD_DATA_DIR=/var/lib/herald

USER herald:herald
EXPOSE 8000

CMD ["herald", "api"]
