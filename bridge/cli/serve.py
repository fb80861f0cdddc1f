"""``loopbridge serve`` (the resident engine for plugins and controllers) and ``loopbridge keys``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .. import protocol as p
from .common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    InputError,
    add_loudness,
    check_loudness,
    fail,
    load_options,
    number,
    positive_int,
    speed_options,
)


def add_parsers(sub: Any) -> None:
    from loopbridge.engine.prerender import DEFAULT_DEPTH

    serve = sub.add_parser("serve", help="run the resident engine for plugins and controllers (ZeroMQ and OSC)")
    serve.add_argument("--zmq", default=p.DEFAULT_ZMQ_ENDPOINT, metavar="ENDPOINT",
                       help=f"where requests come in (default {p.DEFAULT_ZMQ_ENDPOINT})")
    serve.add_argument("--events", default=p.DEFAULT_EVENTS_ENDPOINT, metavar="ENDPOINT",
                       help=f"where events are published, or 'off' (default {p.DEFAULT_EVENTS_ENDPOINT})")
    serve.add_argument("--osc", default=f"{p.DEFAULT_OSC_HOST}:{p.DEFAULT_OSC_PORT}", metavar="HOST:PORT",
                       help=f"where OSC comes in, or 'off' (default {p.DEFAULT_OSC_HOST}:{p.DEFAULT_OSC_PORT})")
    serve.add_argument("--osc-allow", default=None, metavar="LIST",
                       help="controllers allowed to send OSC beyond loopback: addresses or networks, comma-separated")
    serve.add_argument("--device", default="auto", help="auto (CUDA, else Apple's MPS, else the CPU), cpu, cuda or mps")
    serve.add_argument("--memory-budget", type=number("memory-budget"), default=None, metavar="GB",
                       help="memory for resident models, in GB (default: 80%% of the GPU's; on a CPU, 80%% of the "
                            "RAM available less the conform memory)")
    serve.add_argument("--conform-memory", type=number("conform-memory"), default=None, metavar="GB",
                       help="RAM for fitting samples to the song, in GB, for all conforms at once: a larger order is "
                            "refused, conforms wait for their turn (default: 25%% of the RAM available at start)")
    serve.add_argument("--keys", type=Path, default=None, metavar="DIR",
                       help="CURVE keys from `loopbridge keys DIR`: required to listen beyond this machine")
    serve.add_argument("--insecure", action="store_true",
                       help="listen beyond this machine without keys: anyone who can reach the port may use it, "
                            "and nothing is encrypted")
    serve.add_argument("--store", type=Path, default=None, help="the render store folder (default: the data folder)")
    serve.add_argument("--model", default=None,
                       help="the model to warm and to use when a request names none: an id (OWNER/NAME@REV for a "
                            "pulled revision), a folder or FAMILY:PATH, which clients then name by the id the ready "
                            "line gives (default: the embedded default model)")
    serve.add_argument("--prerender", type=positive_int("prerender", 0, 64), default=DEFAULT_DEPTH,
                       help=f"variations pre-rendered after each request (0 turns it off; default {DEFAULT_DEPTH})")
    serve.add_argument("--threads", type=positive_int("threads", 1, 1024), default=None,
                       help="CPU threads for the models (default: torch's choice)")
    serve.add_argument("--export", type=Path, default=None, metavar="DIR",
                       help="where files handed out over OSC are linked under readable names")
    serve.add_argument("--allow-path", type=Path, action="append", default=[], metavar="DIR",
                       help="a folder whose files clients may name by path (audio_prompt_path), besides the store "
                            "and the inbox; repeatable. Clients on other machines send audio as bytes")
    serve.add_argument("--cluster", default=None, metavar="ADDRESS",
                       help="render on the model workers of a Ray cluster: 'local' starts one here, HOST:PORT joins "
                            "the head `loopbridge worker --head` started (needs loopbridge[cluster]); the store, "
                            "queue and conforming stay here")
    serve.add_argument("--cluster-token", type=Path, default=None, metavar="FILE",
                       help="the cluster's token (Ray token authentication): required for a head beyond this machine")
    serve.add_argument("--cluster-tls", type=Path, default=None, metavar="DIR",
                       help="TLS for the cluster (ca.crt, node.crt, node.key): required for a head beyond this machine")
    serve.add_argument("--replicas", type=positive_int("replicas", 1, 256), default=None,
                       help="model workers per model family on the cluster (default: one per GPU, else one)")
    add_loudness(serve, "integrated loudness of loops and textures for requests that name none")
    serve.add_argument("--quiet", action="store_true", help="no line per request")
    speed_options(serve)
    serve.set_defaults(handler=serve_command)

    keys = sub.add_parser("keys", help="make CURVE key pairs for a server reachable beyond this machine")
    keys.add_argument("dir", type=Path, help="folder for server.key(_secret), client.key(_secret), authorized/")
    keys.set_defaults(handler=keys_command)


def _configure_logging(quiet_requests: bool) -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("diffusers", "transformers", "urllib3", "PIL"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if quiet_requests:
        logging.getLogger("loopbridge.requests").setLevel(logging.WARNING)


def serve_command(args: argparse.Namespace) -> int:
    import zmq
    from loopbridge.bridge.security import SecurityError, parse_host_port
    from loopbridge.bridge.server import ServeOptions, serve
    from loopbridge.engine.errors import LoopbridgeError

    osc = None
    if args.osc != "off":
        try:
            osc = parse_host_port(args.osc, p.DEFAULT_OSC_PORT)
        except ValueError as exc:
            raise InputError(f"osc={args.osc!r} is not accepted: {exc}") from None
    for name in ("memory_budget", "conform_memory"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise InputError(f"{name.replace('_', '-')}={value:g} is not accepted: expected more than 0 GB")
    for name in ("zmq", "events"):
        value = getattr(args, name)
        if not (value == "off" and name == "events") and not value.startswith(("tcp://", "ipc://")):
            raise InputError(f"{name}={value!r} is not accepted: expected tcp://HOST:PORT or ipc://PATH")
    check_loudness(args.loudness)
    if args.replicas is not None and args.cluster is None:
        raise InputError(f"replicas={args.replicas} is not accepted without --cluster: expected --cluster ADDRESS")
    cluster_env: dict[str, str] = {}
    if args.cluster is not None:
        from loopbridge.bridge.security import (
            ClusterSecurity,
            SecurityError,
            check_cluster_host,
            cluster_host,
            default_cluster_token,
        )
        from loopbridge.engine.cluster import default_temp_dir

        try:
            # without --cluster-token: the token a head on this machine made in the same data folder (a
            # local cluster makes it), as `loopbridge worker --head` does
            token = args.cluster_token
            if token is None and (args.cluster == "local" or (default_temp_dir() / "auth_token").exists()):
                token = default_cluster_token(default_temp_dir())
            security = ClusterSecurity.load(token, args.cluster_tls)
            check_cluster_host(cluster_host(args.cluster), security, "cluster")
        except (SecurityError, ValueError) as exc:
            raise InputError(str(exc)) from None
        cluster_env = security.environment()
    elif args.cluster_token is not None or args.cluster_tls is not None:
        raise InputError("cluster-token and cluster-tls are not accepted without --cluster: expected --cluster ADDRESS")
    for folder in args.allow_path:
        if not folder.expanduser().is_dir():
            raise InputError(f"allow-path={str(folder)!r} is not accepted: expected an existing folder")
    options = ServeOptions(
        zmq=args.zmq, events=None if args.events == "off" else args.events, osc=osc, osc_allow=args.osc_allow,
        device=args.device, memory_budget_gb=args.memory_budget, conform_memory_gb=args.conform_memory,
        keys_dir=args.keys, insecure=args.insecure,
        store=args.store, model=args.model, prerender=args.prerender, threads=args.threads, export_dir=args.export,
        log_requests=not args.quiet, dtype=args.dtype, load_options=load_options(args),
        allow_paths=tuple(folder.expanduser() for folder in args.allow_path), loudness_lufs=args.loudness,
        cluster=args.cluster, replicas=args.replicas,
    )
    os.environ.update(cluster_env)  # Ray reads its settings from the environment, here and in what it starts
    _configure_logging(args.quiet)
    try:
        return serve(options)
    except SecurityError as exc:
        fail(str(exc))
        return EXIT_BAD_INPUT
    except LoopbridgeError as exc:
        if args.cluster is None:
            raise
        fail(f"cluster={args.cluster!r}: {exc}")
        return EXIT_FAILED
    except zmq.ZMQError as exc:
        fail(f"cannot listen on {args.zmq} / {args.events}: {exc} (is another engine running? choose other "
             "endpoints with --zmq and --events)")
        return EXIT_FAILED
    except OSError as exc:
        fail(f"cannot listen for OSC on {args.osc}: {exc} (choose another with --osc HOST:PORT, or --osc off)")
        return EXIT_FAILED


def keys_command(args: argparse.Namespace) -> int:
    from loopbridge.bridge.security import SecurityError, generate_keys

    try:
        paths = generate_keys(args.dir)
    except SecurityError as exc:
        fail(str(exc))
        return EXIT_FAILED
    public = paths["server_public"].read_text(encoding="ascii")
    server_key = next(line.split("=", 1)[1].strip().strip('"') for line in public.splitlines()
                      if line.strip().startswith("public-key"))
    print(f"server keys: {paths['server_secret']} (keep it on the engine's machine), {paths['server_public']}")
    print(f"client keys: {paths['client_secret']}, authorized by {paths['authorized']}")
    print(f"serve with:  loopbridge serve --zmq tcp://0.0.0.0:5555 --keys {args.dir}")
    print(f"server public key (give it to clients): {server_key}")
    return EXIT_OK
