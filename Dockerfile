# kmo services image (collector, sink). Used by docker-compose.yml; kmo itself needs no Docker.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 KMO_HOME=/var/lib/kmo
WORKDIR /opt/kmo
COPY pyproject.toml README.md ./
COPY kmo ./kmo
COPY ingest ./ingest
COPY streams ./streams
COPY analytics ./analytics
COPY actions ./actions
COPY sql ./sql
RUN pip install . && useradd --system --home /var/lib/kmo kmo && mkdir -p /var/lib/kmo && chown kmo /var/lib/kmo
USER kmo
ENTRYPOINT ["kmo"]
CMD ["--help"]
