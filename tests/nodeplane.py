"""A one-node Kubernetes cluster with a real kubelet, for the node test tier (and by hand).

Everything of the node lives inside a network namespace this module creates: the node IP, the
API server, the Pod network (CNI bridge), the Service range (kube-proxy, iptables), the cluster
DNS (CoreDNS). The namespace has no uplink and no default route, so nothing on the node can
reach anything else; the host's network namespace is never changed. Components:

* containerd, runc and the CNI plugins: Debian packages (``scripts/node-deps.sh``);
* etcd, kube-apiserver, kube-controller-manager: ``kubeplane.py``, serving on the node IP;
* kube-scheduler, kubelet, kube-proxy, CoreDNS, crictl: ``scripts/kube-assets.sh build node``;
* storage: the default StorageClass ``pgparity-local``, provisioned by this module (a hostPath
  directory per claim, deleted with its volume), so StatefulSets' claims bind;
* images: docker-archives from ``scripts/images.sh``, imported into containerd (its content
  store stays in ``~/.cache/pgparity/node``, so a warm start imports nothing).

Command line (as root; the tests run inside the namespace: ``ip netns exec NS pytest -m node``)::

    python tests/nodeplane.py up --state-dir .kube/node --images .kube/images.list
    python tests/nodeplane.py status --state-dir .kube/node     # JSON: netns, kubeconfig, pids
    python tests/nodeplane.py down --state-dir .kube/node

``down`` stops every process ``up`` started, by the PID it recorded, and the pods' processes
(found in the node's own cgroup); removes the pod sandboxes through CRI, unmounts what is
mounted below the state directory, removes the node's cgroups and deletes the namespace. It is
idempotent and works after a failed or interrupted ``up`` too.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kubeplane  # the sibling module, also when run as a script

NODE_NAME = "pgparity-node"
NODE_IP = "10.210.0.2"
DNS_IP = "10.0.0.10"  # inside the Service range, as kubeadm's kube-dns
POD_CIDR = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
SERVICE_CIDR = kubeplane.SERVICE_CLUSTER_IP_RANGE
CLUSTER_DOMAIN = "cluster.local"
# Per namespace: forwarding between pods, bridged (pod-to-pod) traffic through kube-proxy's rules.
SYSCTLS = ("net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1")
STORAGE_CLASS = "pgparity-local"
PROVISIONER = "pgparity.invalid/hostpath"
PAUSE_IMAGE = "localhost/pgparity/pause:3.10"
READY_TIMEOUT = 180.0
CNI_BIN = Path("/usr/lib/cni")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pgparity" / "node"
RUN_NETNS = Path("/run/netns")  # iproute2's named network namespaces
CONTAINER_LOGS = Path("/var/log/containers")  # the kubelet's symlinks; a fixed path upstream


class NodeError(RuntimeError):
    """The node could not be started or stopped."""


def log(message: str) -> None:
    print(f"nodeplane: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ layout
@dataclass(frozen=True)
class Layout:
    """Where one node keeps its state; the namespace and cgroup names derive from it."""

    state: Path

    @property
    def name(self) -> str:
        digest = hashlib.sha256(str(self.state).encode()).hexdigest()[:8]
        return f"pgparity-node-{digest}"

    @property
    def netns_path(self) -> Path:
        return RUN_NETNS / self.name

    @property
    def plane(self) -> Path:
        return self.state / "plane"

    @property
    def kubeconfig(self) -> Path:
        return self.plane / "kubeconfig"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def info(self) -> Path:
        return self.state / "node.json"

    @property
    def containerd_state(self) -> Path:
        return self.state / "containerd"

    @property
    def socket(self) -> Path:
        return self.containerd_state / "containerd.sock"

    @property
    def containerd_root(self) -> Path:
        # Outside the state: the imported images survive a teardown (a warm start imports none).
        return CACHE / "containerd"

    @property
    def kubelet_root(self) -> Path:
        return self.state / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.state / "pod-logs"

    @property
    def volumes(self) -> Path:
        return self.state / "volumes"

    @property
    def config(self) -> Path:
        return self.state / "config"

    @property
    def resolv_conf(self) -> Path:
        return Path("/etc/netns") / self.name / "resolv.conf"

    def mounted_below(self) -> list[Path]:
        """Directories whose mounts belong to this node (state and containerd's root)."""
        return [self.state, self.containerd_root]


# ---------------------------------------------------------------------------- commands
def run(*argv: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
    if check and proc.returncode != 0:
        raise NodeError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def node_assets() -> Path:
    """The node's binaries (built from their Go modules on first use, then cached)."""
    script = kubeplane.ASSETS_SCRIPT
    proc = subprocess.run(
        ["bash", str(script), "build", "node"], stdout=subprocess.PIPE, text=True, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise NodeError(f"{script} build node failed ({proc.returncode}); see its stderr")
    return Path(lines[-1])


def check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise NodeError("a node needs root (network namespaces, cgroups, mounts)")
    missing = [
        tool
        for tool in ("containerd", "ctr", "runc", "ip", "nsenter", "iptables", "conntrack")
        if shutil.which(tool) is None
    ]
    missing += [
        f"{CNI_BIN}/{p}" for p in ("bridge", "host-local", "loopback") if not (CNI_BIN / p).exists()
    ]
    if missing:
        raise NodeError(f"missing {', '.join(missing)}; run scripts/node-deps.sh")


# ------------------------------------------------------------------- network namespace
def create_netns(layout: Layout) -> None:
    """The node's namespace: loopback only, holding the node IP and the cluster DNS address,
    with the Service range routed locally (kube-proxy's DNAT in OUTPUT catches it). No uplink
    and no default route: traffic to anything else fails inside the namespace."""
    ns = layout.name
    run("ip", "netns", "add", ns)
    run("ip", "-n", ns, "link", "set", "lo", "up")
    run("ip", "-n", ns, "addr", "add", f"{NODE_IP}/32", "dev", "lo")
    run("ip", "-n", ns, "addr", "add", f"{DNS_IP}/32", "dev", "lo")
    run("ip", "-n", ns, "route", "add", SERVICE_CIDR, "dev", "lo", "src", NODE_IP)
    run("ip", "netns", "exec", ns, "sysctl", "-qw", *SYSCTLS)
    # What `ip netns exec NS ...` (the tests) resolves with: the cluster DNS.
    layout.resolv_conf.parent.mkdir(parents=True, exist_ok=True)
    layout.resolv_conf.write_text(
        f"nameserver {DNS_IP}\nsearch {CLUSTER_DOMAIN}\noptions ndots:5\n"
    )


def run_netns_state() -> str:
    if not RUN_NETNS.exists():
        return "absent"
    return "mounted" if RUN_NETNS in mounts_below([RUN_NETNS]) else "directory"


def release_run_netns(layout: Layout) -> None:
    """Put /run/netns back as `up` found it, when no namespace is left in it."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        found = json.loads(layout.info.read_text())["runNetns"]
        if found == "mounted" or any(RUN_NETNS.iterdir()):
            return
        if run_netns_state() == "mounted":
            run("umount", str(RUN_NETNS), check=False)
        if found == "absent":
            RUN_NETNS.rmdir()


def delete_netns(layout: Layout) -> None:
    """The namespace, and with it cni0, the pods' veth ends and kube-proxy's rules."""
    if layout.netns_path.exists():
        run("ip", "netns", "del", layout.name, check=False)
    shutil.rmtree(layout.resolv_conf.parent, ignore_errors=True)


# ----------------------------------------------------------------------------- cgroups
def cgroup_mounts() -> list[Path]:
    """Every cgroup (v1) and cgroup2 mount point."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ", 1)
        if len(fields) == 2 and fields[1].split()[0] in ("cgroup", "cgroup2"):
            mounts.append(Path(fields[0].split()[4]))
    return mounts


def create_cgroups(layout: Layout) -> None:
    """The kubelet's cgroupRoot, in every hierarchy (the kubelet requires it to exist)."""
    for mount in cgroup_mounts():
        path = mount / layout.name
        path.mkdir(exist_ok=True)
        # A new cpuset cgroup starts with no CPUs or memory nodes: copy the parent's.
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (mount / name).exists():
                (path / name).write_text((mount / name).read_text())


def cgroup_processes(layout: Layout) -> set[int]:
    pids: set[int] = set()
    for mount in cgroup_mounts():
        for procs in (mount / layout.name).rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids |= {int(p) for p in procs.read_text().split()}
    return pids


def remove_cgroups(layout: Layout) -> None:
    for mount in cgroup_mounts():
        root = mount / layout.name
        if not root.is_dir():
            continue
        for directory in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir():
                with contextlib.suppress(OSError):
                    directory.rmdir()
        with contextlib.suppress(OSError):
            root.rmdir()


# ---------------------------------------------------------------------------- processes
def spawn(layout: Layout, name: str, argv: Sequence[str], **popen: Any) -> kubeplane._Proc:
    """Start a component detached (it outlives `up`), logging to logs/NAME.log; record it."""
    layout.logs.mkdir(parents=True, exist_ok=True)
    log_path = layout.logs / f"{name}.log"
    with log_path.open("ab") as out:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=layout.state,
            **popen,
        )
    proc = kubeplane._Proc(name, child.pid, kubeplane._proc_start_ticks(child.pid), log_path)
    with layout.pids.open("a") as f:
        f.write(f"{name} {proc.pid} {proc.start_ticks or ''}\n")
    return proc


def wait_until(
    what: str, proc: kubeplane._Proc | None, check: Callable[[], bool], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and not proc.alive():
            raise NodeError(
                f"{proc.name} exited; last lines of {proc.log}:\n{kubeplane._tail(proc.log)}"
            )
        with contextlib.suppress(OSError, ValueError, subprocess.SubprocessError):
            if check():
                return
        if time.monotonic() > deadline:
            tail = f"; last lines of {proc.log}:\n{kubeplane._tail(proc.log)}" if proc else ""
            raise NodeError(f"{what}: not within {timeout:.0f}s{tail}")
        time.sleep(0.2)


# -------------------------------------------------------------------------- containerd
def write_containerd_config(layout: Layout) -> Path:
    config = layout.config / "containerd.toml"
    config.write_text(f"""\
version = 2
root = "{layout.containerd_root}"
state = "{layout.containerd_state / "state"}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{layout.socket}"
[ttrpc]
  address = "{layout.socket}.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # No CAP_SYS_RESOURCE on these machines: never ask runc for a negative oom_score_adj (pod
  # sandboxes want -998, and runc then fails every pod).
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{shutil.which("runc")}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{layout.config / "cni"}"
""")
    return config


def ctr(layout: Layout, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("ctr", "--address", str(layout.socket), "--namespace", "k8s.io", *args, check=check)


def start_containerd(layout: Layout) -> kubeplane._Proc:
    """containerd with its content store in the cache; the lock on that store is held by
    containerd itself (an inherited descriptor), so a second node cannot share it."""
    layout.containerd_root.mkdir(parents=True, exist_ok=True)
    lock = os.open(layout.containerd_root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise NodeError(f"another node uses {layout.containerd_root}") from None
    config = write_containerd_config(layout)
    proc = spawn(layout, "containerd", ["containerd", "--config", str(config)], pass_fds=(lock,))
    os.close(lock)
    wait_until("containerd answering", proc, lambda: ctr(layout, "version").returncode == 0, 60)
    return proc


def import_images(layout: Layout, images: Path) -> None:
    """Import each archive not imported before (a record next to the content store)."""
    record_path = layout.containerd_root / "imported.json"
    record: dict[str, str] = json.loads(record_path.read_text()) if record_path.exists() else {}
    present = set(ctr(layout, "images", "ls", "-q").stdout.split())
    for line in images.read_text().splitlines():
        if not line.strip():
            continue
        ref, archive = line.split()
        if ref in present and record.get(ref) == archive:
            continue
        started = time.monotonic()
        ctr(layout, "images", "import", archive)
        record[ref] = archive
        record_path.write_text(json.dumps(record, indent=1))
        log(f"imported {ref} in {time.monotonic() - started:.1f}s")
    # The sandbox image can never be pulled here: containerd must not collect it.
    ctr(layout, "images", "label", PAUSE_IMAGE, "io.cri-containerd.pinned=pinned")


# ------------------------------------------------------------------------ node configs
def write_node_configs(layout: Layout, kubeconfig: Path) -> None:
    cni = layout.config / "cni"
    cni.mkdir(parents=True, exist_ok=True)
    bridge = {
        "type": "bridge",
        "bridge": "cni0",
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": True,  # a pod reaching itself through a Service
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": POD_CIDR, "gateway": POD_GATEWAY}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": str(layout.state / "ipam"),
        },
    }
    network = {"cniVersion": "1.0.0", "name": "pgparity", "plugins": [bridge]}
    (cni / "10-pgparity.conflist").write_text(json.dumps(network, indent=1))
    (layout.config / "resolv.conf").write_text("")  # pods inherit no host nameserver
    (layout.config / "kubelet.yaml").write_text(f"""\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 (hybrid) machines: cgroupfs, and kubelet 1.36 only runs on v1 when told so.
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: /{layout.name}
cgroupsPerQOS: true
failSwapOn: false
containerRuntimeEndpoint: unix://{layout.socket}
address: {NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# The API server reaches the kubelet (logs, exec) without client certificates; nothing else
# can reach this namespace.
authentication:
  anonymous: {{enabled: true}}
  webhook: {{enabled: false}}
authorization: {{mode: AlwaysAllow}}
clusterDNS: [{DNS_IP}]
clusterDomain: {CLUSTER_DOMAIN}
resolvConf: {layout.config / "resolv.conf"}
podLogsDir: {layout.pod_logs}
serializeImagePulls: false
# No registry: an image collected could never come back.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  imagefs.available: 2%
  nodefs.inodesFree: 2%
maxPods: 60
""")
    (layout.config / "kube-proxy.yaml").write_text(f"""\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {kubeconfig}}}
mode: iptables
hostnameOverride: {NODE_NAME}
clusterCIDR: {POD_CIDR}
bindAddress: 127.0.0.1
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Leave the (host-wide) conntrack table sizes alone.
conntrack: {{maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
""")
    # CoreDNS answers for the cluster domain from the API server; nothing is forwarded.
    (layout.config / "Corefile").write_text(f"""\
.:53 {{
    bind {DNS_IP}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} pgparity-test
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
""")


def start_node(layout: Layout, bins: Path, plane: Path, kubeconfig: Path) -> None:
    kubectl = [str(plane / "kubectl"), f"--kubeconfig={kubeconfig}"]
    scheduler = [f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--secure-port=0"]
    spawn(layout, "kube-scheduler", [str(bins / "kube-scheduler"), *scheduler, "--v=1"])
    kubelet = spawn(
        layout,
        "kubelet",
        [
            str(bins / "kubelet"),
            f"--config={layout.config / 'kubelet.yaml'}",
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            f"--root-dir={layout.kubelet_root}",
            f"--cert-dir={layout.state / 'kubelet-pki'}",
            "--v=1",
        ],
    )
    proxy_config = layout.config / "kube-proxy.yaml"
    spawn(layout, "kube-proxy", [str(bins / "kube-proxy"), f"--config={proxy_config}", "--v=1"])

    def node_ready() -> bool:
        jsonpath = "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
        out = run(*kubectl, "get", "node", NODE_NAME, "-o", jsonpath, check=False).stdout
        return out.strip() == "True"

    wait_until(f"node {NODE_NAME} Ready", kubelet, node_ready, READY_TIMEOUT)


def dns_answers(name: str, server: str = DNS_IP) -> bool:
    """One A query over UDP: does the server know ``name``? (No resolver library needed.)"""
    query_id = os.getpid() & 0xFFFF
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + b"\0\1\0\1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.sendto(packet, (server, 53))
        reply = sock.recv(512)
    answer_id, flags, _, answers = struct.unpack(">HHHH", reply[:8])
    return bool(answer_id == query_id and flags & 0xF == 0 and answers > 0)


def start_dns(layout: Layout, bins: Path) -> None:
    coredns = spawn(
        layout, "coredns", [str(bins / "coredns"), "-conf", str(layout.config / "Corefile")]
    )
    name = f"kubernetes.default.svc.{CLUSTER_DOMAIN}"
    wait_until("CoreDNS answering", coredns, lambda: dns_answers(name), 60)


# ----------------------------------------------------------------------------- storage
def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


class Api:
    """Just enough of the Kubernetes API for the provisioner (admin client certificate)."""

    def __init__(self, plane: Path) -> None:
        pki = plane / "pki"
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        kubeconfig = (plane / "kubeconfig").read_text()
        self.server = next(
            line.split("server:", 1)[1].strip()
            for line in kubeconfig.splitlines()
            if "server:" in line
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
            found: Any = json.loads(response.read() or b"{}")
            return found


def provision_once(api: Api, volumes: Path) -> None:
    """Give each pending claim of the default class a hostPath volume; delete released ones."""
    for claim in api.call("GET", "/api/v1/persistentvolumeclaims")["items"]:
        spec = claim["spec"]
        if (
            claim.get("status", {}).get("phase") == "Pending"
            and spec.get("storageClassName") == STORAGE_CLASS
            and not spec.get("volumeName")
        ):
            api.call("POST", "/api/v1/persistentvolumes", host_path_volume(claim, volumes))
    for volume in api.call("GET", "/api/v1/persistentvolumes")["items"]:
        annotations = volume["metadata"].get("annotations") or {}
        if annotations.get("pv.kubernetes.io/provisioned-by") == PROVISIONER and volume.get(
            "status", {}
        ).get("phase") in ("Released", "Failed"):
            shutil.rmtree(volume["spec"]["hostPath"]["path"], ignore_errors=True)
            api.call("DELETE", f"/api/v1/persistentvolumes/{volume['metadata']['name']}")


def host_path_volume(claim: dict[str, Any], volumes: Path) -> dict[str, Any]:
    meta, spec = claim["metadata"], claim["spec"]
    path = volumes / f"{meta['namespace']}-{meta['name']}-{meta['uid'][:8]}"
    path.mkdir(parents=True, exist_ok=True)
    # The kubelet applies no fsGroup to hostPath volumes: any pod user may write here (the
    # PostgreSQL image's initdb makes its own 0700 directory below it).
    path.chmod(0o1777)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta['uid']}",
            "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec["accessModes"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "hostPath": {"path": str(path), "type": "Directory"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [NODE_NAME],
                                },
                            ]
                        }
                    ]
                }
            },
        },
    }


def provision_forever(layout: Layout) -> int:
    api = Api(layout.plane)
    while True:
        try:
            provision_once(api, layout.volumes)
        except (OSError, ValueError) as exc:  # the API server restarting, a race: next round
            log(f"provisioner: {exc}")
        time.sleep(1.0)


def start_storage(layout: Layout, kubectl: list[str]) -> None:
    proc = subprocess.run(
        [*kubectl, "apply", "-f", "-"],
        input=json.dumps(storage_class()),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        raise NodeError(f"creating StorageClass {STORAGE_CLASS}: {proc.stderr.strip()}")
    layout.volumes.mkdir(parents=True, exist_ok=True)
    this = str(Path(__file__).resolve())
    spawn(
        layout, "provisioner", [sys.executable, this, "provision", "--state-dir", str(layout.state)]
    )


# ----------------------------------------------------------------------------- up/down
def up(layout: Layout, images: Path) -> int:
    if any(p.alive() for p in recorded(layout)):
        log(f"already running ({layout.info}); stop it with `down` first")
        return 0
    check_prerequisites()
    plane_assets = kubeplane.find_assets()
    bins = node_assets()
    down(layout, quiet=True)  # what a killed run may have left
    started = time.monotonic()
    layout.state.mkdir(parents=True, exist_ok=True)
    info = {
        "netns": layout.name,
        "cgroup": f"/{layout.name}",
        "nodeAssets": str(bins),
        # `ip netns add` makes /run/netns (a directory, then a mount point) the first time:
        # `down` undoes what it found undone.
        "runNetns": run_netns_state(),
    }
    layout.info.write_text(json.dumps(info))
    try:
        create_cgroups(layout)
        create_netns(layout)
        inner = [
            "nsenter",
            f"--net={layout.netns_path}",
            sys.executable,
            str(Path(__file__).resolve()),
            "start",
            "--state-dir",
            str(layout.state),
            "--images",
            str(images.resolve()),
            "--plane-assets",
            str(plane_assets),
            "--node-assets",
            str(bins),
        ]
        if subprocess.run(inner, check=False).returncode != 0:
            raise NodeError(f"the node did not start (logs in {layout.logs})")
    except BaseException:
        keep = layout.logs
        log(f"tearing the node down again; logs stay in {keep}")
        down(layout, quiet=True)
        raise
    info = json.loads(layout.info.read_text())
    log(
        f"node {NODE_NAME} up in {time.monotonic() - started:.1f}s in network namespace "
        f"{layout.name}; use it: ip netns exec {layout.name} {info['kubectl']} "
        f"--kubeconfig {info['kubeconfig']} get nodes"
    )
    return 0


def start(layout: Layout, images: Path, plane_assets: Path, bins: Path) -> int:
    """Inside the node's namespace: start everything, wait until the node serves."""
    t0 = time.monotonic()
    for directory in (layout.config, layout.containerd_state, layout.logs):
        directory.mkdir(parents=True, exist_ok=True)
    start_containerd(layout)
    import_images(layout, images)
    log(f"containerd up, images in {time.monotonic() - t0:.1f}s")
    plane = kubeplane.ControlPlane(
        plane_assets,
        state_dir=layout.plane,
        die_with_parent=False,
        node_ip=NODE_IP,
        ready_timeout=READY_TIMEOUT,
    )
    plane.start()
    kubeconfig = plane.kubeconfig
    plane.detach()
    write_node_configs(layout, kubeconfig)
    start_node(layout, bins, plane_assets, kubeconfig)
    start_dns(layout, bins)
    start_storage(layout, [str(plane_assets / "kubectl"), f"--kubeconfig={kubeconfig}"])
    info = json.loads(layout.info.read_text())
    info |= {
        "kubeconfig": str(kubeconfig),
        "kubectl": str(plane_assets / "kubectl"),
        "node": NODE_NAME,
        "nodeIP": NODE_IP,
        "seconds": round(time.monotonic() - t0, 1),
    }
    layout.info.write_text(json.dumps(info, indent=1))
    return 0


def recorded(layout: Layout) -> list[kubeplane._Proc]:
    """What `up` started: the node's components and the plane (etcd, apiserver, kcm)."""
    return kubeplane.read_pids(layout.state) + kubeplane.read_pids(layout.plane)


def stop(procs: Sequence[kubeplane._Proc], names: Sequence[str]) -> None:
    kubeplane.terminate([p for p in procs if p.name in names], grace=10.0)


def remove_sandboxes(layout: Layout, bins: Path | None) -> None:
    """Every pod sandbox through CRI (stops its containers, runs CNI DEL, unmounts its network
    namespace and shm); then anything left in containerd's k8s.io namespace."""
    if (
        not layout.socket.exists()
        or run("ctr", "--address", str(layout.socket), "version", check=False).returncode != 0
    ):
        return
    if bins is not None and (bins / "crictl").exists():
        crictl = [
            str(bins / "crictl"),
            "--runtime-endpoint",
            f"unix://{layout.socket}",
            "--timeout",
            "60s",
        ]
        run(*crictl, "rmp", "--all", "--force", check=False, timeout=300)
    for task in ctr(layout, "tasks", "ls", "-q", check=False).stdout.split():
        ctr(layout, "tasks", "kill", "--signal", "SIGKILL", task, check=False)
        ctr(layout, "tasks", "rm", "--force", task, check=False)
    containers = ctr(layout, "containers", "ls", "-q", check=False).stdout.split()
    if containers:
        ctr(layout, "containers", "rm", *containers, check=False)


def shim_processes(layout: Layout) -> list[int]:
    """containerd's runc shims for this node: their command line names its socket."""
    found = []
    needle = str(layout.socket).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def kill_leftovers(layout: Layout) -> None:
    """Pods' processes and shims that outlived their sandboxes (only after a failure)."""
    for _ in range(50):
        pids = (cgroup_processes(layout) | set(shim_processes(layout))) - {os.getpid()}
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    raise NodeError(f"processes of the node survive SIGKILL: {sorted(pids)}")


def mounts_below(directories: Sequence[Path]) -> list[Path]:
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(line.split()[4].encode().decode("unicode_escape"))
        if any(point == d or d in point.parents for d in directories):
            found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def unmount_all(layout: Layout) -> None:
    for _ in range(5):  # a lazy unmount can uncover another mount below it
        points = mounts_below(layout.mounted_below())
        if not points:
            return
        for point in points:
            run("umount", "--lazy", str(point), check=False)


def remove_log_links(layout: Layout) -> None:
    """The kubelet's /var/log/containers symlinks into this node's pod logs."""
    if CONTAINER_LOGS.is_dir():
        for link in CONTAINER_LOGS.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and str(os.readlink(link)).startswith(str(layout.pod_logs)):
                    link.unlink()


def down(layout: Layout, quiet: bool = False) -> int:
    if not layout.info.exists() and not layout.pids.exists():
        if not quiet:
            log(f"no node in {layout.state}")
        return 0
    procs = recorded(layout)
    stop(procs, ("coredns", "provisioner", "kubelet", "kube-proxy", "kube-scheduler"))
    remove_sandboxes(layout, _recorded_node_assets(layout))
    kubeplane.stop_processes(kubeplane.read_pids(layout.plane), 10.0)
    stop(procs, ("containerd",))
    kill_leftovers(layout)
    unmount_all(layout)
    remove_cgroups(layout)
    delete_netns(layout)
    release_run_netns(layout)
    remove_log_links(layout)
    remove_state(layout)
    left = check_clean(layout, procs)
    if left:
        raise NodeError("left behind: " + "; ".join(left))
    if not quiet:
        log(f"node down; logs in {layout.logs}")
    return 0


def _recorded_node_assets(layout: Layout) -> Path | None:
    """Where `up` found crictl (teardown builds nothing)."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        return Path(json.loads(layout.info.read_text())["nodeAssets"])
    return None


def remove_state(layout: Layout) -> None:
    """Everything but the logs."""
    kubeplane.remove_state(layout.plane)
    for entry in layout.state.iterdir() if layout.state.is_dir() else ():
        if entry == layout.logs:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def check_clean(layout: Layout, procs: Sequence[kubeplane._Proc]) -> list[str]:
    """What of the node is still there (empty when the teardown was complete)."""
    left = [f"process {p.name}[{p.pid}]" for p in procs if p.alive()]
    left += [f"process {pid} in the node's cgroup" for pid in sorted(cgroup_processes(layout))]
    left += [f"mount {p}" for p in mounts_below(layout.mounted_below())]
    left += [f"cgroup {m / layout.name}" for m in cgroup_mounts() if (m / layout.name).exists()]
    if layout.netns_path.exists():
        left.append(f"network namespace {layout.name}")
    return left


# -------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="A one-node Kubernetes cluster, offline.")
    sub = parser.add_subparsers(dest="command", required=True)
    up_ = sub.add_parser("up", help="start the node (as root); it runs until `down`")
    up_.add_argument("--state-dir", required=True)
    up_.add_argument("--images", required=True, help="'reference archive' lines (images.sh)")
    start_ = sub.add_parser("start", help=argparse.SUPPRESS)  # `up`, inside the namespace
    start_.add_argument("--state-dir", required=True)
    start_.add_argument("--images", required=True)
    start_.add_argument("--plane-assets", required=True)
    start_.add_argument("--node-assets", required=True)
    for name, text in (
        ("down", "stop everything `up` started and remove it; idempotent"),
        ("provision", argparse.SUPPRESS),
    ):
        sub.add_parser(name, help=text).add_argument("--state-dir", required=True)
    status_ = sub.add_parser(
        "status", help="the node as JSON: netns, kubeconfig, pids (exit 1: not up)"
    )
    status_.add_argument("--state-dir", required=True)
    status_.add_argument("--field", help="print only this field (e.g. netns, kubeconfig)")
    return parser


def status(layout: Layout, field: str | None) -> int:
    procs = recorded(layout)
    if not procs or not all(p.alive() for p in procs):
        print(f"no node running in {layout.state}", file=sys.stderr)
        return 1
    info = json.loads(layout.info.read_text())
    info["pids"] = {p.name: p.pid for p in procs}
    print(json.dumps(info) if field is None else info[field])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    layout = Layout(Path(args.state_dir).resolve())
    try:
        if args.command == "up":
            return up(layout, Path(args.images))
        if args.command == "start":
            return start(layout, Path(args.images), Path(args.plane_assets), Path(args.node_assets))
        if args.command == "down":
            return down(layout)
        if args.command == "provision":
            return provision_forever(layout)
        return status(layout, args.field)
    except (NodeError, kubeplane.ControlPlaneError) as exc:
        log(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
