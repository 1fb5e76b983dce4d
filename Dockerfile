# The platform's image: a plain multi-stage Rust build (docker-compose.yml builds it). Not tested
# on the development machines (no Docker engine there).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# A production image: no sandboxes compiled in (`--no-default-features`); add `--features sandbox`
# for a demo image, `--features scylla` for the cluster backend.
ARG FEATURES=""
RUN cargo build --release --locked --bin hospital --no-default-features --features "$FEATURES"

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data --uid 10001 hospital \
    && mkdir -p /data && chown hospital /data
COPY --from=build /src/target/release/hospital /usr/local/bin/hospital
USER hospital
ENV HOSPITAL_LISTEN=0.0.0.0:8080 HOSPITAL_DATA_DIR=/data
EXPOSE 8080
VOLUME /data
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["hospital"]
