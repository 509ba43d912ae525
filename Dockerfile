# partnergate in a small image (used by docker-compose.yml). Not exercised in CI: the project's machines have
# no container engine; tests/containers.rs checks that the commands named here exist.
FROM rust:1-bookworm AS build
# No -dev packages: libpq, OpenSSL and SQLite are built from source by their crates (see Cargo.toml).
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/partnergate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin partnergate \
    && mkdir -p /app/data /app/keys && chown partnergate:partnergate /app/data /app/keys && chmod 0700 /app/data /app/keys
COPY --from=build /src/target/release/partnergate /usr/local/bin/partnergate
USER partnergate
WORKDIR /app
ENV PARTNERGATE_BIND=0.0.0.0:8080
EXPOSE 8080
# /readyz through the binary itself: the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["partnergate", "healthcheck"]
ENTRYPOINT ["partnergate"]
CMD ["serve"]
