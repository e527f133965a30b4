#!/bin/sh
# `hub` inside the hub's image (first on PATH): runs every hub command as the unprivileged user "hub",
# the server (CMD) as well as `docker compose exec hub hub ...`.
# Started as root, the default, it first
#   - adds the group of the Docker socket, when one is mounted: its group id differs from host to host;
#   - hands /data and /routes to the hub user where something in them belongs to another user
#     (the volumes of a hub that ran as root, before this script existed);
# then drops to the hub user for good (no capabilities, no new privileges).
# Started as any other user, it runs the command as that user.
set -eu
HUB=/opt/hub/bin/hub
SOCKET=/var/run/docker.sock

if [ "$(id -u)" != 0 ]; then
  exec "$HUB" "$@"
fi
uid=$(id -u hub)
gid=$(id -g hub)
groups=$gid
if [ -S "$SOCKET" ]; then
  groups="$groups,$(stat -c %g "$SOCKET")"
fi
for dir in /data /routes; do
  if [ -d "$dir" ] && [ -n "$(find "$dir" \( ! -user "$uid" -o ! -group "$gid" \) -print -quit)" ]; then
    echo "hub-entrypoint: giving $dir to the hub user (uid $uid)" >&2
    chown -R "$uid:$gid" "$dir"
  fi
done
export HOME=/home/hub USER=hub LOGNAME=hub
exec setpriv --reuid="$uid" --regid="$gid" --groups="$groups" --inh-caps=-all --no-new-privs -- "$HUB" "$@"
