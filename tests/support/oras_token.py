# Drives oras-py (PyPI `oras`, OCI Registry as Storage) against an Everlock registry for
# tests/oci_token_clients.rs. oras-py follows the Bearer token handshake itself: it reads the
# challenge, asks the realm for a token (with Basic credentials when logged in, anonymously
# otherwise) and retries with it.
#
# Usage: python3 oras_token.py push <host/repo:tag> <file>
#        python3 oras_token.py pull <host/repo:tag> <outdir>
# Credentials come from EVERLOCK_USER / EVERLOCK_PASSWORD (never argv, which `ps` shows);
# without them the script stays anonymous. The server's CA comes from REQUESTS_CA_BUNDLE.
import os
import sys

import oras.client


def main():
    mode, target, path = sys.argv[1:4]
    host = target.split("/", 1)[0]
    config = os.path.join(os.environ["HOME"], "docker-config.json")
    client = oras.client.OrasClient(hostname=host)
    user = os.environ.get("EVERLOCK_USER")
    if user:
        client.login(
            username=user,
            password=os.environ["EVERLOCK_PASSWORD"],
            hostname=host,
            config_path=config,
        )
    if mode == "push":
        # oras-py requires files below the working directory, named relatively.
        os.chdir(os.path.dirname(path))
        response = client.push(
            target=target, files=[os.path.basename(path)], config_path=config
        )
        if response.status_code != 201:
            sys.exit(f"push answered {response.status_code}: {response.text}")
    elif mode == "pull":
        files = client.pull(target=target, outdir=path, config_path=config)
        if not files:
            sys.exit("pull returned no files")
        print("\n".join(files))
    else:
        sys.exit(f"unknown mode {mode}")


main()
