# Sourced by the scripts that run the project: installs the npm packages (with the Node 24 binary)
# when they are missing or older than package-lock.json, e.g. after a pull that changed them.
if [ ! -x node_modules/node/bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund || exit 1
fi
