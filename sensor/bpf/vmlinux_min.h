/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * The few kernel types trawl's BPF programs read, declared by hand.
 *
 * Every type carries `preserve_access_index`, so each field access compiles
 * to a CO-RE relocation: the loader (aya) looks the field up by name in the
 * running kernel's BTF (/sys/kernel/btf/vmlinux) and patches the offset in.
 * Offsets and field order here therefore do not need to match any kernel.
 * Declaring only these types, instead of a 3 MB `bpftool btf dump` of one
 * kernel, keeps the committed object reproducible on any build machine;
 * `.ci/run` also compiles the program against the running kernel's full
 * `vmlinux.h` to check that every field named here exists there.
 */
#ifndef TRAWL_VMLINUX_MIN_H
#define TRAWL_VMLINUX_MIN_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef int pid_t;
typedef _Bool bool;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

enum bpf_map_type {
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
};

struct qstr {
	union {
		struct {
			u32 hash;
			u32 len;
		};
		u64 hash_len;
	};
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
} __attribute__((preserve_access_index));

struct vfsmount {
	struct dentry *mnt_root;
} __attribute__((preserve_access_index));

struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
} __attribute__((preserve_access_index));

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
} __attribute__((preserve_access_index));

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
	struct file *exe_file;
} __attribute__((preserve_access_index));

struct fs_struct {
	struct path pwd;
} __attribute__((preserve_access_index));

struct task_struct {
	pid_t pid;
	pid_t tgid;
	int exit_code;
	u64 start_boottime;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct fs_struct *fs;
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
	const char *interp;
} __attribute__((preserve_access_index));

#endif
