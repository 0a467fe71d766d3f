# stepgate — multi-stage image: build (native better-sqlite3, TypeScript, the bundled UI) in a
# builder, run as a non-root user on Node 22 LTS slim with the store in the /data volume.
#   docker build -t stepgate .
#   docker run -p 8080:8080 -v stepgate-data:/data -v $PWD/config:/app/config:ro stepgate

FROM node:22-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY ui ./ui
# `npm ci` runs `prepare` (tsc + the UI bundle); then drop the build-only dependencies.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    STEPGATE_CONFIG=/app/config/gateway.yaml \
    STEPGATE_ROUTES=/app/config/routes.yaml \
    STEPGATE_DATA_DIR=/data \
    STEPGATE_LISTEN=0.0.0.0:8080
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config ./config
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# The admin listener (admin_listen, 127.0.0.1:9090 by default) answers /healthz inside the container.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/cli.js", "start"]
