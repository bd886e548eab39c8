"""nginx and Caddy, each with its shipped configuration from integrations/ (only
the `# EDIT` lines rewritten), in a throwaway folder on a free loopback port."""
from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import free_port
from tests.integrations.conftest import ALLOW_TOKEN
from tests.integrations.programs import INTEGRATIONS, Program, edit_marked, need_program

NGINX_SITE = INTEGRATIONS / "nginx" / "tollgate.conf"
CADDY_SITE = INTEGRATIONS / "caddy" / "Caddyfile"


def hostport(url: str) -> str:
    return url.removeprefix("http://").rstrip("/")


def nginx(folder: Path, tollgate_url: str, origin_url: str) -> Program:
    binary = need_program("nginx", "nginx")
    port = free_port()
    site = edit_marked(NGINX_SITE.read_text(), {
        "tollgate": f"server {hostport(tollgate_url)};",
        "origin": f"server {hostport(origin_url)};",
        "listen": f"listen 127.0.0.1:{port};",
        "allow-token": f'proxy_set_header Tollgate-Allow-Token "{ALLOW_TOKEN}";',
    })
    (folder / "tollgate.conf").write_text(site)
    temps = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in
                      ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = folder / "nginx.conf"
    main.write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {folder / 'nginx.pid'};
error_log {folder / 'error.log'} warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
{temps}
    include {folder / 'tollgate.conf'};
}}
""")
    return Program([binary, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(main),
                    "-g", "daemon off;"], port, folder / "nginx.log")


def caddy(folder: Path, tollgate_url: str, origin_url: str) -> Program:
    binary = need_program("caddy", "caddy")
    port = free_port()
    site = edit_marked(CADDY_SITE.read_text(), {
        "listen": f"http://127.0.0.1:{port} {{",
        "tollgate": f"reverse_proxy {hostport(tollgate_url)} {{",
        "origin": f"reverse_proxy {hostport(origin_url)} {{",
        "allow-token": f'header_up Tollgate-Allow-Token "{ALLOW_TOKEN}"',
    })
    config = folder / "Caddyfile"
    config.write_text("{\n\tadmin off\n\tauto_https off\n}\n\n" + site)
    home = {"HOME": str(folder), "XDG_DATA_HOME": str(folder / "data"), "XDG_CONFIG_HOME": str(folder / "config")}
    return Program([binary, "run", "--config", str(config), "--adapter", "caddyfile"], port,
                   folder / "caddy.log", env=home)


LAUNCHERS = {"nginx": nginx, "caddy": caddy}
