// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
/*
 * trawl's process events, captured in the kernel.
 *
 * Three BTF tracepoints (CO-RE, read through the running kernel's BTF):
 *   sched_process_exec: pid, parent, uid/gid, the real executable's path, the
 *     working directory, argv (up to ARGV_MAX bytes, cut and flagged beyond),
 *     and for `#!` scripts the file execve named;
 *   sched_process_fork: new processes (threads are skipped);
 *   sched_process_exit: a thread group leader's exit.
 * Records go to user space through one BPF ring buffer. A record that does
 * not fit (reserve/output failure) is counted per kind in `lost`, so no loss
 * is silent. The layout of `struct trawl_event` is mirrored in
 * sensor/src/linux/ebpf/record.rs; change both together.
 *
 * Build: see sensor/bpf/build.sh (the object is committed beside this file).
 * Needs Linux 5.17 or newer (bpf_loop) with BTF.
 */
#ifdef TRAWL_FULL_VMLINUX
#include "vmlinux.h" /* CI: the running kernel's types, from bpftool */
#else
#include "vmlinux_min.h"
#endif
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define KIND_EXEC 1
#define KIND_FORK 2
#define KIND_EXIT 3

#define FLAG_ARGV_TRUNCATED (1u << 0)
#define FLAG_EXE_TRUNCATED (1u << 1)
#define FLAG_CWD_TRUNCATED (1u << 2)
#define FLAG_FILE_TRUNCATED (1u << 3)
#define FLAG_ARGV_UNREADABLE (1u << 4)

/* argv bytes kept per exec: at least 4 KiB, as the issue asks. */
#define ARGV_MAX 8192
/* Room for one path: its components, leaf first, NUL-separated. */
#define PATH_ROOM 4096
/* Longest name of one path component, with its NUL. */
#define NAME_ROOM 256
/* Path components followed before a path is cut. */
#define MAX_DEPTH 64
/* Data area: argv, exe path, cwd, exec filename, back to back. */
#define DATA_ROOM (ARGV_MAX + 3 * PATH_ROOM)

struct trawl_event {
	u32 kind;
	u32 flags;
	u64 ktime_ns;   /* CLOCK_BOOTTIME of the event */
	u64 start_ns;   /* the task's start, CLOCK_BOOTTIME (pid reuse) */
	u32 pid;        /* thread group id: the process id users see */
	u32 ppid;
	u32 uid;
	u32 gid;
	u32 argv_len;
	u32 exe_len;
	u32 cwd_len;
	u32 file_len;
	s32 exit_code;
	u32 tid;
};

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Records lost because the ring buffer was full, indexed by KIND_*. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

static __always_inline void count_lost(u32 kind)
{
	u64 *n = bpf_map_lookup_elem(&lost, &kind);
	if (n)
		*n += 1;
}

/*
 * Field offsets the walk needs, found by CO-RE relocations in the caller:
 * the callback below reads through them with plain probe reads, because
 * aya does not apply CO-RE relocations inside bpf_loop callbacks.
 */
struct walk_offsets {
	u32 mnt_root;       /* vfsmount.mnt_root */
	u32 d_parent;       /* dentry.d_parent */
	u32 d_name;         /* dentry.d_name.name */
	u32 mnt_parent;     /* mount.mnt_parent */
	u32 mnt_mountpoint; /* mount.mnt_mountpoint */
	u32 mnt;            /* mount.mnt */
};

/*
 * State of one path walk. It lives in the per-CPU scratch map, not on the
 * stack: values loaded from a map are not tracked by the verifier, so every
 * loop step looks the same to it and one verification covers them all.
 */
struct walk {
	struct walk_offsets o;
	void *dentry;
	void *vfsmnt;
	void *mnt;
	u32 off;
	u32 end;
	u32 cut;
};

struct exec_scratch {
	struct trawl_event ev;
	char data[DATA_ROOM + NAME_ROOM];
	struct walk walk;
};

/* The callback's context (on the stack, as bpf_loop requires). */
struct walk_ctx {
	struct exec_scratch *s;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct exec_scratch);
} scratch SEC(".maps");

static __always_inline void *read_ptr(void *base, u32 offset)
{
	void *p = 0;
	bpf_probe_read_kernel(&p, sizeof(p), base + offset);
	return p;
}

/* One step up from the current component; returns 1 to stop the loop. */
static long walk_step(u32 index, void *ctx)
{
	struct exec_scratch *s = ((struct walk_ctx *)ctx)->s;
	struct walk *w = &s->walk;
	void *dentry = w->dentry;
	void *root = read_ptr(w->vfsmnt, w->o.mnt_root);
	void *parent = read_ptr(dentry, w->o.d_parent);

	if (dentry == root || dentry == parent) {
		void *up = read_ptr(w->mnt, w->o.mnt_parent);
		if (dentry != root || up == w->mnt || !up)
			return 1; /* the root of the namespace: done */
		w->dentry = read_ptr(w->mnt, w->o.mnt_mountpoint);
		w->mnt = up;
		w->vfsmnt = up + w->o.mnt;
		return 0;
	}
	u32 off = w->off;
	if (off > DATA_ROOM || off + NAME_ROOM > w->end) {
		w->cut = 1;
		return 1;
	}
	const unsigned char *name = read_ptr(dentry, w->o.d_name);
	long n = bpf_probe_read_kernel_str(s->data + off, NAME_ROOM, name);
	if (n <= 0) {
		w->cut = 1;
		return 1;
	}
	w->off = off + n;
	w->dentry = parent;
	return 0;
}

/*
 * Writes the components of `path` into s->data[off..end), leaf first, each
 * NUL-terminated; user space reverses them. Crosses mount points up to the
 * namespace root. Returns the bytes written.
 */
static __always_inline u32 walk_path(struct exec_scratch *s, struct path *path, u32 off,
				     u32 end, u32 cut_flag)
{
	struct walk *w = &s->walk;
	w->o.mnt_root = bpf_core_field_offset(struct vfsmount, mnt_root);
	w->o.d_parent = bpf_core_field_offset(struct dentry, d_parent);
	w->o.d_name = bpf_core_field_offset(struct dentry, d_name) +
		      bpf_core_field_offset(struct qstr, name);
	w->o.mnt_parent = bpf_core_field_offset(struct mount, mnt_parent);
	w->o.mnt_mountpoint = bpf_core_field_offset(struct mount, mnt_mountpoint);
	w->o.mnt = bpf_core_field_offset(struct mount, mnt);
	w->dentry = BPF_CORE_READ(path, dentry);
	w->vfsmnt = BPF_CORE_READ(path, mnt);
	w->mnt = w->vfsmnt - w->o.mnt;
	w->off = off;
	w->end = end;
	w->cut = 0;
	struct walk_ctx ctx = { .s = s };
	long steps = bpf_loop(MAX_DEPTH, walk_step, &ctx, 0);
	if (w->cut || steps >= MAX_DEPTH)
		s->ev.flags |= cut_flag;
	u32 written = w->off - off;
	return written > PATH_ROOM ? PATH_ROOM : written;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(trawl_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	u32 zero = 0;
	struct exec_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	struct trawl_event *ev = &s->ev;
	u64 uid_gid = bpf_get_current_uid_gid();

	ev->kind = KIND_EXEC;
	ev->flags = 0;
	ev->ktime_ns = bpf_ktime_get_boot_ns();
	ev->start_ns = BPF_CORE_READ(task, start_boottime);
	ev->pid = BPF_CORE_READ(task, tgid);
	ev->tid = BPF_CORE_READ(task, pid);
	ev->ppid = BPF_CORE_READ(task, real_parent, tgid);
	ev->uid = (u32)uid_gid;
	ev->gid = (u32)(uid_gid >> 32);
	ev->exit_code = 0;

	/* argv: the new image's argument strings, NUL-separated. */
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	unsigned long arg_start = BPF_CORE_READ(mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(mm, arg_end);
	u64 argv_len = arg_end > arg_start ? arg_end - arg_start : 0;
	if (argv_len > ARGV_MAX) {
		argv_len = ARGV_MAX;
		ev->flags |= FLAG_ARGV_TRUNCATED;
	}
	if (argv_len > 0 &&
	    bpf_probe_read_user(s->data, argv_len & (2 * ARGV_MAX - 1), (void *)arg_start) != 0) {
		argv_len = 0;
		ev->flags |= FLAG_ARGV_UNREADABLE;
	}
	ev->argv_len = argv_len;
	u32 off = argv_len;

	/* The executable really running (for a script: its interpreter). */
	struct file *exe = BPF_CORE_READ(mm, exe_file);
	struct path exe_path;
	BPF_CORE_READ_INTO(&exe_path, exe, f_path);
	ev->exe_len = walk_path(s, &exe_path, off, off + PATH_ROOM, FLAG_EXE_TRUNCATED);
	off += ev->exe_len;

	struct path pwd;
	BPF_CORE_READ_INTO(&pwd, task, fs, pwd);
	ev->cwd_len = walk_path(s, &pwd, off, off + PATH_ROOM, FLAG_CWD_TRUNCATED);
	off += ev->cwd_len;

	/* The file execve named, when the kernel ran an interpreter for it. */
	const char *filename = BPF_CORE_READ(bprm, filename);
	const char *interp = BPF_CORE_READ(bprm, interp);
	ev->file_len = 0;
	/* The compiler can prove these bounds and would drop the checks; the
	 * verifier cannot (the walk's lengths come from a map), so hide them. */
	barrier_var(off);
	if (filename != interp && off <= DATA_ROOM - PATH_ROOM) {
		long n = bpf_probe_read_kernel_str(s->data + off, PATH_ROOM, filename);
		if (n > 0) {
			ev->file_len = n - 1;
			off += n - 1;
		}
	}

	u64 size = sizeof(struct trawl_event) + off;
	barrier_var(size);
	if (size > sizeof(struct trawl_event) + DATA_ROOM)
		size = sizeof(struct trawl_event) + DATA_ROOM;
	if (bpf_ringbuf_output(&events, s, size, 0) != 0)
		count_lost(KIND_EXEC);
	return 0;
}

/* A fork or exit record: no strings, so it is built on the stack. */
static __always_inline void emit_task(u32 kind, struct task_struct *task, u32 ppid, s32 exit_code)
{
	struct trawl_event ev = {};
	ev.kind = kind;
	ev.ktime_ns = bpf_ktime_get_boot_ns();
	ev.start_ns = BPF_CORE_READ(task, start_boottime);
	ev.pid = BPF_CORE_READ(task, tgid);
	ev.tid = ev.pid;
	ev.ppid = ppid;
	ev.exit_code = exit_code;
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0) != 0)
		count_lost(kind);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(trawl_fork, struct task_struct *parent, struct task_struct *child)
{
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0; /* a new thread, not a new process */
	emit_task(KIND_FORK, child, BPF_CORE_READ(parent, tgid), 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(trawl_exit, struct task_struct *task)
{
	if (BPF_CORE_READ(task, pid) != BPF_CORE_READ(task, tgid))
		return 0; /* a thread; the process ends with its leader */
	emit_task(KIND_EXIT, task, 0, BPF_CORE_READ(task, exit_code));
	return 0;
}
