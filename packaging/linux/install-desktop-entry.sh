#!/bin/sh
# Add ovpaint to the desktop's application menu for the current user: writes
# ~/.local/share/applications/ovpaint.desktop (pointing at this folder) and copies the icons to
# ~/.local/share/icons. Nothing is written into this folder. Run it again after moving the folder;
# `install-desktop-entry.sh --remove` takes the entry and the icons out again.
set -eu
here=$(cd "$(dirname "$0")" && pwd -P)
data=${XDG_DATA_HOME:-$HOME/.local/share}
if [ "${1:-}" = "--remove" ]; then
    rm -f "$data/applications/ovpaint.desktop"
    find "$data/icons/hicolor" -path '*/apps/ovpaint.*' -delete 2>/dev/null || true
    echo "removed the ovpaint menu entry"
    exit 0
fi
mkdir -p "$data/applications"
if [ -d "$here/share/icons" ]; then
    cp -R "$here/share/icons/." "$data/icons/"
fi
sed -e "s|^Exec=ovpaint-app|Exec=\"$here/ovpaint-app\"|" \
    -e "s|^TryExec=ovpaint-app|TryExec=$here/ovpaint-app|" \
    "$here/ovpaint.desktop" > "$data/applications/ovpaint.desktop.tmp"
mv "$data/applications/ovpaint.desktop.tmp" "$data/applications/ovpaint.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
echo "ovpaint added to the application menu ($data/applications/ovpaint.desktop)"
