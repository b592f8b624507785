/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by bpf/cgroups.bpf.c and exporter/collectors/cgroup_collector.cc. */
#ifndef EXECFLOW_CGROUPS_H
#define EXECFLOW_CGROUPS_H

/* Longer paths are not recorded (user space walks cgroupfs); a Kubernetes container's: ~190 B. */
#define CGROUP_PATH_LEN 256

/*
 * Most recent cgroups kept (the config overrides it before load). LRU: the oldest go, by then
 * read by user space. 8192 * (256 + 8 + ~50 B) is ~2.5 MiB of kernel memory.
 */
#define CGROUP_DEFAULT_MAX_PATHS 8192

/* A cgroup v2 folder's path below the hierarchy root, "/a/b", NUL-terminated. */
struct cgroup_path {
	char path[CGROUP_PATH_LEN];
};

#endif /* EXECFLOW_CGROUPS_H */
