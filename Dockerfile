# The tutor as a container (README: `docker compose up` runs Redis, the bot and a demo worker). Alone:
# `docker run -e TUTOR_DISCORD_TOKEN=... -v tutor-data:/data dl-tutor` runs the bot; on a new volume the
# entry point ingests the bundled notes first (docker/entrypoint.sh).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TUTOR_DATA_DIR=/data MPLBACKEND=Agg

# torch first, pinned, CPU build (an unpinned torch pulls a multi-GB CUDA build).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY engine ./engine
COPY index ./index
COPY knowledge ./knowledge
COPY tutor ./tutor
COPY docker/entrypoint.sh /usr/local/bin/tutor-entrypoint
RUN pip install .

RUN useradd --create-home --uid 10001 tutor && mkdir -p /data && chown tutor:tutor /data
USER tutor
VOLUME ["/data"]

ENTRYPOINT ["tutor-entrypoint"]
CMD ["bot"]
