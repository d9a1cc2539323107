"""``hpcsoa serve`` / ``python -m hpcsoa.emulator``: run the emulator until SIGINT/SIGTERM.

The first line on stdout contains the base URL (with the real port when ``--port 0``), so
scripts can read it; with TLS the banner also shows the certificate's SHA-256 fingerprint and
SHA-1 thumbprint, and a generated user is printed with its password.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ._config import EmulatorConfig, parse_latency, parse_service_version
from ._faults import FaultPlan
from ._server import EmulatorServer

if TYPE_CHECKING:
    from ..protocol import ServiceVersion

__all__ = ["build_parser", "config_from_args", "serve_main"]


class UsageError(Exception):
    """A flag value that cannot be used (exit code 2)."""


def build_parser(prog: str = "hpcsoa serve") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Run a local emulator of the HPC Pack REST web service "
        "(SOA broker, jobs, nodes).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    p.add_argument(
        "--cluster", default="HPCLAB", help="cluster name, letters only (default HPCLAB)"
    )
    p.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="'DOMAIN\\name:password'",
        help="a user for Basic auth (repeatable); none given: one is generated and printed",
    )
    p.add_argument("--auth", choices=("basic", "none"), default="basic", help="authentication mode")
    p.add_argument(
        "--tls", action="store_true", help="serve HTTPS (self-signed unless --cert/--key)"
    )
    p.add_argument("--cert", help="PEM certificate file (implies --tls)")
    p.add_argument("--key", help="PEM private key file (with --cert)")
    p.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="NAME=module:function",
        help="register a user SOA service (repeatable)",
    )
    p.add_argument(
        "--service-version",
        action="append",
        default=[],
        metavar="NAME=VERSION[,VERSION...]",
        help="register versions of a service, e.g. CcpEchoSvc=1.0,2.0 (repeatable; "
        "Get Service Versions and Create Session's ServiceVersion)",
    )
    p.add_argument("--cores", type=int, default=8, help="concurrent service calls (default 8)")
    p.add_argument(
        "--latency-ms",
        default="0",
        help="service time per request: MS, uniform:LO,HI, exp:MEAN or normal:MU,SIGMA (default 0)",
    )
    p.add_argument("--machine-name", default="CN01", help="name services report (default CN01)")
    p.add_argument(
        "--fault-plan", metavar="FILE", help="JSON fault plan (see hpcsoa.emulator._faults)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed for latency draws and fault probabilities"
    )
    p.add_argument(
        "--client-idle-timeout-ms", type=int, default=300_000, help="batch idle timeout; 0 disables"
    )
    p.add_argument(
        "--session-idle-timeout-ms",
        type=int,
        default=300_000,
        help="session idle timeout; 0 disables",
    )
    p.add_argument(
        "--max-message-size", type=int, default=65536, help="default MaxMessageSize (bytes)"
    )
    p.add_argument(
        "--max-body-mb", type=int, default=256, help="request body limit in MiB (default 256)"
    )
    p.add_argument(
        "--reject-durable", action="store_true", help="refuse durable sessions (like Azure)"
    )
    p.add_argument(
        "--strict-order", action="store_true", help="drop out-of-order WebSessionStartInfo members"
    )
    p.add_argument(
        "--strict-length",
        action="store_true",
        help="answer 411 to a POST/PUT without Content-Length or Transfer-Encoding (HTTP.sys)",
    )
    p.add_argument("--nodes", type=int, default=4, help="compute nodes (scheduler; default 4)")
    p.add_argument("--cores-per-node", type=int, default=8, help="cores per node (default 8)")
    p.add_argument(
        "--task-runner",
        choices=("simulate", "local"),
        default="simulate",
        help="how tasks run (default simulate)",
    )
    p.add_argument(
        "--task-runtime-ms", type=int, default=200, help="simulated task run time (default 200)"
    )
    p.add_argument(
        "--log-level",
        default="info",
        type=str.lower,
        choices=("debug", "info", "warning", "error", "critical"),
        help="log level (default info: one line per request on stderr)",
    )
    return p


def _parse_user(spec: str) -> tuple[str, str]:
    name, sep, password = spec.partition(":")
    if not sep or not name:
        raise UsageError("--user must look like 'DOMAIN\\name:password'")
    return name, password


def _load_service(spec: str) -> tuple[str, Callable[..., Any]]:
    name, sep, target = spec.partition("=")
    module_name, sep2, func_name = target.partition(":")
    if not (sep and sep2 and name and module_name and func_name):
        raise UsageError(f"--service must look like NAME=module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--service {name}: cannot import {module_name!r}: {exc}") from None
    obj: Any = module
    for part in func_name.split("."):
        obj = getattr(obj, part, None)
    if not callable(obj):
        raise UsageError(f"--service {name}: {module_name}:{func_name} is not a callable")
    return name, obj


def _parse_service_versions(specs: Sequence[str]) -> dict[str, tuple[ServiceVersion, ...]]:
    out: dict[str, tuple[ServiceVersion, ...]] = {}
    for spec in specs:
        name, sep, versions = spec.partition("=")
        if not (sep and name.strip() and versions.strip()):
            raise UsageError(
                f"--service-version must look like NAME=VERSION[,VERSION...], got {spec!r}"
            )
        try:
            parsed = tuple(parse_service_version(v) for v in versions.split(","))
        except ValueError as exc:
            raise UsageError(f"--service-version {name.strip()}: {exc}") from None
        out[name.strip()] = out.get(name.strip(), ()) + parsed
    return out


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Turn parsed flags into an :class:`EmulatorConfig`.

    Raises:
        UsageError: a flag value is unusable (bad user, service, service version, fault plan
            or latency).
    """
    users = dict(_parse_user(u) for u in args.user)
    services = dict(_load_service(s) for s in args.service)
    service_versions = _parse_service_versions(args.service_version)
    latency: float | str = args.latency_ms
    try:
        kind, values = parse_latency(args.latency_ms)
        if kind == "fixed":
            latency = values[0]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    plan = None
    if args.fault_plan:
        try:
            plan = FaultPlan.load(args.fault_plan)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--fault-plan: {exc}") from None
    if bool(args.cert) != bool(args.key):
        raise UsageError("--cert and --key go together")
    try:
        return EmulatorConfig(
            host=args.host,
            port=args.port,
            cluster=args.cluster,
            users=users,
            auth=args.auth,
            tls=bool(args.tls or args.cert),
            cert_file=args.cert,
            key_file=args.key,
            services=services,
            service_versions=service_versions,
            cores=args.cores,
            latency_ms=latency,
            machine_name=args.machine_name,
            client_max_size=args.max_body_mb * 1024 * 1024,
            default_max_message_size=args.max_message_size,
            session_idle_timeout_ms=args.session_idle_timeout_ms,
            client_idle_timeout_ms=args.client_idle_timeout_ms,
            strict_order=args.strict_order,
            strict_length=args.strict_length,
            reject_durable=args.reject_durable,
            fault_plan=plan,
            seed=args.seed,
            nodes=args.nodes,
            cores_per_node=args.cores_per_node,
            task_runner=args.task_runner,
            task_runtime_ms=args.task_runtime_ms,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _banner(server: EmulatorServer, out: TextIO) -> None:
    lines = [f"hpcsoa emulator listening on {server.base_url} (cluster {server.cluster})"]
    if server.cert_sha256 is not None:
        lines.append(f"  TLS certificate SHA-256 fingerprint: {server.cert_sha256}")
        lines.append(f"  TLS certificate SHA-1 thumbprint:    {server.cert_sha1}")
    config = server.config
    if config.auth == "none":
        lines.append("  auth: none (any credentials accepted)")
    elif server.generated_user:
        lines.append(f"  generated user: {server.username}  password: {server.password}")
    else:
        lines.append(f"  users: {', '.join(sorted(config.users))}")
    lines.append(f"  services: {', '.join(server.state.services.names())}")
    lines.append("  press Ctrl+C to stop")
    out.write("\n".join(lines) + "\n")
    out.flush()


async def _serve(config: EmulatorConfig, out: TextIO) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with EmulatorServer(config) as server:
            _banner(server, out)
            await stop.wait()
            logging.getLogger("hpcsoa.emulator").info("stopping")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def serve_main(argv: Sequence[str] | None = None, *, prog: str = "hpcsoa serve") -> int:
    """Run ``hpcsoa serve`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    0 after a clean stop (SIGINT/SIGTERM), 2 for unusable flags, 1 when the server cannot
    start (e.g. the port is taken).
    """
    parser = build_parser(prog)
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        config = config_from_args(args)
    except UsageError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(_serve(config, sys.stdout))
    except KeyboardInterrupt:  # platforms without loop signal handlers
        return 0
    except OSError as exc:
        print(f"{parser.prog}: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
