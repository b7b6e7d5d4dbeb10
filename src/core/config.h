/*
 * struct vm_config: the whole output of the front end.
 *
 * Plain data, owned by the config (every string is heap-allocated and freed
 * by vm_config_free). The command-line parser fills it; the VMM builds a
 * machine from it; --print-config and GET /vm/inspect print it as JSON.
 * Nothing here knows about KVM.
 */
#ifndef KRUNKIT_CORE_CONFIG_H
#define KRUNKIT_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_MAX_CPUS 255
#define VIRTIO_FS_TAG_MAX 36

enum boot_kind {
    BOOT_DEFAULT, /* no --bootloader: EFI with a per-VM variable store */
    BOOT_EFI,     /* --bootloader efi[,variable-store=PATH][,create] */
    BOOT_LINUX,   /* --bootloader linux,... or --kernel/--initrd/--kernel-cmdline */
};

struct boot_config {
    enum boot_kind kind;
    char *variable_store; /* EFI: NULL when not given */
    bool create;          /* EFI: create the variable store from the template */
    char *kernel;         /* LINUX: the kernel image (the arch says which format) */
    char *initrd;         /* LINUX: optional */
    char *cmdline;        /* LINUX: optional */
};

/* One value per line of core/device_list.h. */
enum dev_type {
#define DEVICE(id, sym) DEV_##id,
#include "core/device_list.h"
#undef DEVICE
    DEV_TYPE_COUNT
};

enum blk_format { BLK_FMT_RAW, BLK_FMT_QCOW2 };

struct dev_blk {
    char *path;
    enum blk_format format;
    char *device_id; /* GET_ID string, at most 20 bytes; NULL when absent */
    bool readonly;
    /* allowBackingOutside=: a qcow2 image may name backing files outside its directory */
    bool allow_backing_outside;
};

enum net_type {
    NET_UNIXGRAM,   /* one frame per datagram (gvproxy, vmnet-helper) */
    NET_UNIXSTREAM, /* 4-byte big-endian length + frame (passt, socket_vmnet) */
    NET_NAT,        /* vfkit's "nat": parsed, refused at start on Linux */
};

struct dev_net {
    enum net_type type;
    bool unix_socket_path_form; /* given as unixSocketPath= (vfkit form) */
    char *path;                 /* socket path, NULL when fd is used */
    int fd;                     /* inherited socket fd, -1 when path is used */
    uint8_t mac[6];
    bool mac_set; /* false: the VMM picks a locally administered MAC */
    bool offloading;
    bool vfkit_magic;
};

enum serial_mode { SERIAL_LOGFILE, SERIAL_STDIO, SERIAL_PTY };

/* A guest can write its console without end: the log file stops growing here. */
#define SERIAL_LOG_MAX_DEFAULT (64ull << 20)

struct dev_serial {
    enum serial_mode mode;
    char *log_file_path;    /* SERIAL_LOGFILE only */
    uint64_t log_max_bytes; /* logFileMaxSize=: the log's size cap, 0 = none */
};

struct dev_vsock {
    uint32_t port;
    char *socket_url; /* host UNIX socket path */
    bool listen;      /* true: listen (default); false: connect */
};

struct dev_fs {
    char *shared_dir;
    char *mount_tag;
    /* allowSetuid: keep the setuid/setgid bits the guest sets (off: stripped, docs/fs.md). */
    bool allow_setuid;
};

struct dev_gpu {
    uint32_t width, height;
};

struct dev_config {
    enum dev_type type;
    /*
     * The options of a kind that keeps its config struct in its own file
     * (its parse allocates it, its free frees it); the kinds below keep
     * theirs in the union.
     */
    void *priv;
    union {
        struct dev_blk blk;
        struct dev_net net;
        struct dev_serial serial;
        struct dev_vsock vsock;
        struct dev_fs fs;
        struct dev_gpu gpu;
    };
};

enum rest_scheme { REST_NONE, REST_TCP, REST_UNIX };

struct rest_config {
    enum rest_scheme scheme;
    char *uri;  /* as given; NULL when absent (no service) */
    char *host; /* REST_TCP */
    uint16_t port;
    char *path; /* REST_UNIX */
};

struct vm_config {
    unsigned cpus;
    uint64_t memory_mib;
    bool nested;
    int log_level; /* 0 off .. 5 trace; default 3 */
    char *log_file;
    struct rest_config rest;
    char *pidfile;
    bool timesync;
    uint32_t timesync_port;
    char *firmware_path;
    char **oem_strings;
    size_t n_oem_strings;
    bool gui;
    struct boot_config boot;
    struct dev_config *devices;
    size_t n_devices;
};

/* What argv asked for besides a VM. */
enum cli_action { CLI_RUN, CLI_PRINT_CONFIG, CLI_HELP, CLI_VERSION };

void vm_config_init(struct vm_config *cfg);
void vm_config_free(struct vm_config *cfg);
/* Frees the strings one device owns (not the device itself). */
void dev_config_free(struct dev_config *dev);

/* Name of a device type as written on the command line ("virtio-blk"). */
const char *dev_type_name(enum dev_type type);

/*
 * The resolved configuration as a JSON document (malloc'ed, NUL-terminated):
 * the same text for --print-config and GET /vm/inspect. NULL on ENOMEM.
 */
char *vm_config_to_json(const struct vm_config *cfg);

#endif
