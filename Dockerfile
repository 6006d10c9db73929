# cartmem worker image: `cartmem <command>` (compose.yaml runs `ingest`, `answer`, `db upgrade`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/cartmem

# dependencies first, pinned, so source edits do not reinstall torch
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir -p app model storage migrations \
    && touch app/__init__.py model/__init__.py storage/__init__.py migrations/__init__.py \
    && pip install -c constraints.txt . \
    && pip uninstall -y cartmem

COPY app app
COPY model model
COPY storage storage
COPY migrations migrations
RUN pip install --no-deps . && useradd --system --create-home cartmem \
    && mkdir -p /var/lib/cartmem && chown cartmem /var/lib/cartmem

USER cartmem
ENV CARTMEM_DATA_DIR=/var/lib/cartmem
ENTRYPOINT ["cartmem"]
CMD ["--help"]
