/*
 * cli_parse: every option of the krunkit/vfkit command line, case by case,
 * every error path, the example command lines of krunkit's usage.md and a
 * podman machine command line (CLIENTS.md).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli/args.h"
#include "core/config.h"
#include "cli/devopts.h"
#include "devices/input.h"

static struct vm_config cfg;
static enum cli_action act;
static char err[512];

static int setup(void **state)
{
    (void)state;
    vm_config_init(&cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vm_config_free(&cfg);
    return 0;
}

static int parse_argv(const char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    vm_config_free(&cfg);
    memset(err, 0, sizeof(err));
    return cli_parse(argc, (char **)argv, &cfg, &act, err, sizeof(err));
}

#define BASE "krunkit", "-c", "1", "-m", "64"
#define PARSE(...) parse_argv((const char *[]){__VA_ARGS__, NULL})

static void expect_ok(int r)
{
    if (r != 0)
        fail_msg("unexpected error %d: %s", r, err);
}

/* A failed parse names the option and the value, and leaves cfg empty. */
static void expect_err(int r, const char *needle1, const char *needle2)
{
    if (r != -EINVAL)
        fail_msg("expected -EINVAL, got %d (error \"%s\")", r, err);
    if (needle1 && !strstr(err, needle1))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle1);
    if (needle2 && !strstr(err, needle2))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle2);
    assert_int_equal(cfg.cpus, 0);
    assert_int_equal(cfg.n_devices, 0);
    assert_null(cfg.devices);
    assert_null(cfg.pidfile);
    assert_int_equal(act, CLI_RUN);
}

#define OK(...) expect_ok(PARSE(BASE, __VA_ARGS__))
#define OK_RAW(...) expect_ok(PARSE("krunkit", __VA_ARGS__))
#define ERR(n1, n2, ...) expect_err(PARSE(BASE, __VA_ARGS__), n1, n2)
#define ERR_RAW(n1, n2, ...) expect_err(PARSE("krunkit", __VA_ARGS__), n1, n2)

/* ---- resources ---- */

static void test_cpus(void **state)
{
    (void)state;
    OK_RAW("--cpus", "2", "--memory", "2048");
    assert_int_equal(cfg.cpus, 2);
    assert_int_equal(cfg.memory_mib, 2048);
    assert_int_equal(act, CLI_RUN);
    OK_RAW("-c", "255", "-m", "1");
    assert_int_equal(cfg.cpus, 255);
    OK_RAW("-c4", "-m1");
    assert_int_equal(cfg.cpus, 4);
    OK_RAW("--cpus=3", "--memory=3");
    assert_int_equal(cfg.cpus, 3);
    assert_int_equal(cfg.memory_mib, 3);
    OK_RAW("-c", "1", "-m", "1");
    assert_int_equal(cfg.cpus, 1);
}

static void test_cpus_errors(void **state)
{
    (void)state;
    ERR_RAW("--cpus", "\"0\"", "--cpus", "0", "-m", "64");
    ERR_RAW("--cpus", "\"256\"", "--cpus", "256", "-m", "64");
    ERR_RAW("--cpus", "\"-1\"", "--cpus", "-1", "-m", "64");
    ERR_RAW("--cpus", "\"2x\"", "--cpus", "2x", "-m", "64");
    ERR_RAW("-c", "\"x\"", "-c", "x", "-m", "64");
    ERR_RAW("--cpus", "\"99999999999999999999999\"", "--cpus", "99999999999999999999999", "-m",
            "64");
    ERR_RAW("--cpus", "empty value", "--cpus=", "-m", "64");
    ERR_RAW("--cpus", "needs a value", "-m", "64", "--cpus");
    ERR_RAW("--cpus", "more than once", "--cpus", "1", "-c", "2", "-m", "64");
    ERR_RAW("--cpus", "required", "-m", "64");
    ERR_RAW("--cpus", "required", NULL);
}

static void test_memory(void **state)
{
    (void)state;
    static const struct {
        const char *arg;
        uint64_t mib;
    } cases[] = {
        {"2048", 2048},
        {"512M", 512},
        {"512m", 512},
        {"2G", 2048},
        {"2g", 2048},
        {"1T", 1024 * 1024},
        {"1P", 1024ull * 1024 * 1024},
        {"16383P", 16383ull << 30},
        {"17592186044415", (1ull << 44) - 1},
        {"007", 7},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_ok(PARSE("krunkit", "-c", "1", "--memory", cases[i].arg));
        assert_int_equal(cfg.memory_mib, cases[i].mib);
    }
    OK_RAW("-c", "1", "-m2G");
    assert_int_equal(cfg.memory_mib, 2048);
    OK_RAW("-c", "1", "--memory=1G");
    assert_int_equal(cfg.memory_mib, 1024);
}

static void test_memory_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "0",
        "0G",
        "G",
        "1.5G",
        "1K",
        "1GB",
        "-1",
        "+1",
        " 1",
        "1 ",
        "abc",
        "1e3",
        "17592186044416",
        "16384P",
        "99999999999999999999999",
        "99999999999999999999999G",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "\"%s\"", bad[i]);
        expect_err(PARSE("krunkit", "-c", "1", "--memory", bad[i]), "--memory", quoted);
    }
    ERR_RAW("-m \"0\"", "more than 0", "-c", "1", "-m", "0");
    ERR_RAW("--memory \"16384P\"", "too large", "-c", "1", "--memory", "16384P");
    ERR_RAW("--memory", "required", "-c", "1");
    ERR_RAW("--memory", "more than once", "-c", "1", "-m", "1", "--memory", "2");
    ERR_RAW("-m", "needs a value", "-c", "1", "-m");
}

static void test_host_memory_check(void **state)
{
    (void)state;
    assert_int_equal(cli_check_memory(1024, 2048, err, sizeof(err)), 0);
    assert_int_equal(cli_check_memory(2048, 2048, err, sizeof(err)), 0);
    assert_int_equal(cli_check_memory(2049, 2048, err, sizeof(err)), -ENOMEM);
    assert_non_null(strstr(err, "--memory 2049"));
    assert_non_null(strstr(err, "2048 MiB"));
    /* Unknown host size: nothing to compare against. */
    assert_int_equal(cli_check_memory(1ull << 40, 0, err, sizeof(err)), 0);
    assert_true(cli_host_memory_mib() > 0);
}

static void test_nested_gui_flags(void **state)
{
    (void)state;
    OK(NULL);
    assert_false(cfg.nested);
    assert_false(cfg.gui);
    OK("--nested");
    assert_true(cfg.nested);
    OK("-n");
    assert_true(cfg.nested);
    OK("--nested=true");
    assert_true(cfg.nested);
    OK("--nested=off");
    assert_false(cfg.nested);
    OK("--gui");
    assert_true(cfg.gui);
    ERR("--nested", "\"maybe\"", "--nested=maybe");
    ERR("--nested", "more than once", "-n", "--nested");
    ERR("-n", "takes no value", "-n1");
    ERR("--gui", "more than once", "--gui", "--gui");
}

/* ---- logging, files, REST ---- */

static void test_log_level(void **state)
{
    (void)state;
    OK(NULL);
    assert_int_equal(cfg.log_level, 3);
    for (int i = 0; i <= 5; i++) {
        char v[4];
        snprintf(v, sizeof(v), "%d", i);
        OK("--krun-log-level", v);
        assert_int_equal(cfg.log_level, i);
    }
    /* usage.md: "5 or more=trace". */
    OK("--krun-log-level", "9");
    assert_int_equal(cfg.log_level, 5);
    OK("--krun-log-level=4294967295");
    assert_int_equal(cfg.log_level, 5);
    ERR("--krun-log-level", "\"-1\"", "--krun-log-level", "-1");
    ERR("--krun-log-level", "\"x\"", "--krun-log-level", "x");
    ERR("--krun-log-level", "\"4294967296\"", "--krun-log-level", "4294967296");
    ERR("--krun-log-level", "empty value", "--krun-log-level", "");
    ERR("--krun-log-level", "more than once", "--krun-log-level", "1", "--krun-log-level", "2");

    /* vfkit's (and older krunkit's) --log-level NAME. */
    static const struct {
        const char *name;
        int level;
    } names[] = {{"off", 0},  {"error", 1}, {"warn", 2},  {"warning", 2},
                 {"info", 3}, {"debug", 4}, {"DEBUG", 4}, {"trace", 5}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        OK("--log-level", names[i].name);
        assert_int_equal(cfg.log_level, names[i].level);
    }
    OK("--log-level=debug");
    assert_int_equal(cfg.log_level, 4);
    ERR("--log-level \"verbose\"", "not a log level", "--log-level", "verbose");
    ERR("--log-level \"4\"", "not a log level", "--log-level", "4");
    ERR("--log-level and --krun-log-level cannot be combined", NULL, "--log-level", "debug",
        "--krun-log-level", "4");
    ERR("--log-level and --krun-log-level cannot be combined", NULL, "--krun-log-level", "4",
        "--log-level", "debug");
}

static void test_paths(void **state)
{
    (void)state;
    OK("--log-file", "/tmp/k.log", "--pidfile", "/run/k.pid", "--firmware-path", "/fw.fd");
    assert_string_equal(cfg.log_file, "/tmp/k.log");
    assert_string_equal(cfg.pidfile, "/run/k.pid");
    assert_string_equal(cfg.firmware_path, "/fw.fd");
    OK("-f", "/other.fd", "--pidfile=/p");
    assert_string_equal(cfg.firmware_path, "/other.fd");
    assert_string_equal(cfg.pidfile, "/p");
    OK(NULL);
    assert_null(cfg.log_file);
    assert_null(cfg.pidfile);
    assert_null(cfg.firmware_path);
    ERR("--log-file", "empty value", "--log-file", "");
    ERR("--pidfile", "needs a value", "--pidfile");
    ERR("--pidfile", "more than once", "--pidfile", "/a", "--pidfile", "/b");
    ERR("--firmware-path", "more than once", "-f", "/a", "--firmware-path", "/b");
    ERR("--log-file", "more than once", "--log-file", "/a", "--log-file=/b");
}

static void test_oem_strings(void **state)
{
    (void)state;
    OK(NULL);
    assert_int_equal(cfg.n_oem_strings, 0);
    OK("--oem-string", "io.systemd.credential:a=b", "--oem-string=second, with comma",
       "--oem-string", "x");
    assert_int_equal(cfg.n_oem_strings, 3);
    assert_string_equal(cfg.oem_strings[0], "io.systemd.credential:a=b");
    assert_string_equal(cfg.oem_strings[1], "second, with comma");
    assert_string_equal(cfg.oem_strings[2], "x");
    ERR("--oem-string", "empty value", "--oem-string", "");
}

static void test_restful_uri(void **state)
{
    (void)state;
    OK(NULL);
    assert_int_equal(cfg.rest.scheme, REST_NONE);
    assert_null(cfg.rest.uri);

    OK("--restful-uri", "none://");
    assert_int_equal(cfg.rest.scheme, REST_NONE);
    assert_string_equal(cfg.rest.uri, "none://");

    OK("--restful-uri", "tcp://localhost:8081");
    assert_int_equal(cfg.rest.scheme, REST_TCP);
    assert_string_equal(cfg.rest.host, "localhost");
    assert_int_equal(cfg.rest.port, 8081);
    assert_string_equal(cfg.rest.uri, "tcp://localhost:8081");

    OK("--restful-uri=tcp://127.0.0.1:65535");
    assert_string_equal(cfg.rest.host, "127.0.0.1");
    assert_int_equal(cfg.rest.port, 65535);

    OK("--restful-uri", "tcp://[::1]:1");
    assert_string_equal(cfg.rest.host, "::1");
    assert_int_equal(cfg.rest.port, 1);

    OK("--restful-uri", "unix:///tmp/krunkit-rest.sock");
    assert_int_equal(cfg.rest.scheme, REST_UNIX);
    assert_string_equal(cfg.rest.path, "/tmp/krunkit-rest.sock");
    assert_null(cfg.rest.host);

    /* sun_path holds 108 bytes: 107 of path and the NUL. */
    char uri[200], path[120];
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    path[107] = '\0';
    snprintf(uri, sizeof(uri), "unix://%s", path);
    OK("--restful-uri", uri);
    assert_int_equal(strlen(cfg.rest.path), 107);
    path[107] = 'a';
    path[108] = '\0';
    snprintf(uri, sizeof(uri), "unix://%s", path);
    ERR("--restful-uri", "longer than 107", "--restful-uri", uri);
}

static void test_restful_uri_errors(void **state)
{
    (void)state;
    static const struct {
        const char *uri, *why;
    } bad[] = {
        {"tcp://localhost", "missing :PORT"},
        {"tcp://localhost:", "PORT"},
        {"tcp://:8081", "missing HOST"},
        {"tcp://localhost:0", "PORT"},
        {"tcp://localhost:65536", "PORT"},
        {"tcp://localhost:http", "PORT"},
        {"tcp://localhost:8081/", "no path"},
        {"tcp://localhost:8081/vm", "no path"},
        {"tcp://localhost:8081?x=1", "no path"},
        {"tcp://user@localhost:8081", "no user"},
        {"tcp://::1:8081", "brackets"},
        {"tcp://[::1]8081", "missing :PORT"},
        {"tcp://[::1:8081", "unterminated"},
        {"tcp://[]:8081", "missing HOST"},
        {"unix://relative/path", "three slashes"},
        {"unix://", "three slashes"},
        {"unix:///", "directory"},
        {"unix:///tmp/dir/", "directory"},
        {"none://x", "nothing after"},
        {"http://localhost:8081", "unknown scheme"},
        {"localhost:8081", "unknown scheme"},
        {"TCP://localhost:8081", "unknown scheme"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char quoted[80];
        snprintf(quoted, sizeof(quoted), "--restful-uri \"%s\"", bad[i].uri);
        expect_err(PARSE(BASE, "--restful-uri", bad[i].uri), quoted, bad[i].why);
    }
    ERR("--restful-uri", "more than once", "--restful-uri", "none://", "--restful-uri", "none://");
}

static void test_timesync(void **state)
{
    (void)state;
    OK(NULL);
    assert_false(cfg.timesync);
    OK("--timesync", "vsockPort=1234");
    assert_true(cfg.timesync);
    assert_int_equal(cfg.timesync_port, 1234);
    OK("--timesync=vsockPort=4294967294");
    assert_int_equal(cfg.timesync_port, 4294967294u);
    ERR("--timesync", "needs vsockPort", "--timesync", "port=1");
    ERR("--timesync", "unknown key \"foo\"", "--timesync", "vsockPort=1,foo=2");
    ERR("--timesync", "empty value for vsockPort", "--timesync", "vsockPort=");
    ERR("--timesync", "needs a value", "--timesync", "vsockPort");
    ERR("--timesync", "invalid number vsockPort=x", "--timesync", "vsockPort=x");
    ERR("--timesync", "out of range", "--timesync", "vsockPort=4294967295");
    ERR("--timesync", "given twice", "--timesync", "vsockPort=1,vsockPort=2");
    ERR("--timesync", "more than once", "--timesync", "vsockPort=1", "--timesync", "vsockPort=2");
    ERR("--timesync \"vsockPort=1025\"", "already used", "--timesync", "vsockPort=1025", "--device",
        "virtio-vsock,port=1025,socketURL=/tmp/v.sock");
}

/* ---- boot ---- */

static void test_bootloader_efi(void **state)
{
    (void)state;
    OK(NULL);
    assert_int_equal(cfg.boot.kind, BOOT_DEFAULT);
    OK("--bootloader", "efi");
    assert_int_equal(cfg.boot.kind, BOOT_EFI);
    assert_null(cfg.boot.variable_store);
    assert_false(cfg.boot.create);
    OK("--bootloader", "efi,variable-store=/vm/efi-vars");
    assert_string_equal(cfg.boot.variable_store, "/vm/efi-vars");
    assert_false(cfg.boot.create);
    OK("--bootloader=efi,variable-store=/vm/efi-vars,create");
    assert_string_equal(cfg.boot.variable_store, "/vm/efi-vars");
    assert_true(cfg.boot.create);
    OK("--bootloader", "efi,create=off,variable-store=\"/a,b\"");
    assert_string_equal(cfg.boot.variable_store, "/a,b");
    assert_false(cfg.boot.create);

    ERR("--bootloader \"efi,create\"", "create needs variable-store", "--bootloader", "efi,create");
    ERR("--bootloader", "unknown key \"foo\"", "--bootloader", "efi,foo=1");
    ERR("--bootloader", "unknown bootloader \"bios\"", "--bootloader", "bios");
    ERR("--bootloader", "unknown bootloader \"efi\"", "--bootloader", "efi=1");
    ERR("--bootloader", "empty value for variable-store", "--bootloader", "efi,variable-store=");
    ERR("--bootloader", "needs a value", "--bootloader", "efi,variable-store");
    ERR("--bootloader", "invalid value create=yes", "--bootloader",
        "efi,variable-store=/v,create=yes");
    ERR("--bootloader", "unterminated quote", "--bootloader", "efi,variable-store=\"/v");
    ERR("--bootloader", "given twice", "--bootloader", "efi,create,create");
    ERR("--bootloader", "more than once", "--bootloader", "efi", "--bootloader", "efi");
    ERR("--bootloader", "empty value", "--bootloader", "");
}

static void test_bootloader_linux(void **state)
{
    (void)state;
    OK("--bootloader", "linux,kernel=/boot/bzImage");
    assert_int_equal(cfg.boot.kind, BOOT_LINUX);
    assert_string_equal(cfg.boot.kernel, "/boot/bzImage");
    assert_null(cfg.boot.initrd);
    assert_null(cfg.boot.cmdline);

    /* Quoted: commas and spaces stay inside, and keys may follow. */
    OK("--bootloader", "linux,cmdline=\"console=ttyS0,115200 root=/dev/vda\",kernel=/k,initrd=/i");
    assert_string_equal(cfg.boot.cmdline, "console=ttyS0,115200 root=/dev/vda");
    assert_string_equal(cfg.boot.kernel, "/k");
    assert_string_equal(cfg.boot.initrd, "/i");

    /* As it arrives after the shell removed the quotes: cmdline runs to the end. */
    OK("--bootloader",
       "linux,kernel=/k,initrd=/i,cmdline=console=ttyS0,115200 root=/dev/vda quiet");
    assert_string_equal(cfg.boot.cmdline, "console=ttyS0,115200 root=/dev/vda quiet");

    OK("--bootloader", "linux,kernel=/k,cmdline='say \"hi\", x'");
    assert_string_equal(cfg.boot.cmdline, "say \"hi\", x");
    OK("--bootloader", "linux,kernel=/k,cmdline=\"a \\\"b\\\" \\\\c\"");
    assert_string_equal(cfg.boot.cmdline, "a \"b\" \\c");

    ERR("--bootloader", "linux needs kernel=", "--bootloader", "linux,initrd=/i");
    ERR("--bootloader", "linux needs kernel=", "--bootloader", "linux");
    ERR("--bootloader", "unknown key \"foo\"", "--bootloader", "linux,kernel=/k,foo=1");
    ERR("--bootloader", "empty value for kernel", "--bootloader", "linux,kernel=");
    ERR("--bootloader", "empty value for cmdline", "--bootloader", "linux,kernel=/k,cmdline=");
    ERR("--bootloader", "unknown key \"variable-store\"", "--bootloader",
        "linux,kernel=/k,variable-store=/v");
    ERR("--bootloader", "unterminated quote", "--bootloader", "linux,kernel=/k,cmdline=\"a");
}

static void test_vfkit_kernel_options(void **state)
{
    (void)state;
    OK("--kernel", "/k", "--initrd", "/i", "--kernel-cmdline", "console=hvc0 root=/dev/vda");
    assert_int_equal(cfg.boot.kind, BOOT_LINUX);
    assert_string_equal(cfg.boot.kernel, "/k");
    assert_string_equal(cfg.boot.initrd, "/i");
    assert_string_equal(cfg.boot.cmdline, "console=hvc0 root=/dev/vda");
    OK("--kernel=/k");
    assert_string_equal(cfg.boot.kernel, "/k");
    assert_null(cfg.boot.initrd);
    ERR("--initrd \"/i\"", "needs --kernel", "--initrd", "/i");
    ERR("--kernel-cmdline \"quiet\"", "needs --kernel", "--kernel-cmdline", "quiet");
    ERR("--kernel \"/k\"", "cannot be combined with --bootloader", "--kernel", "/k", "--bootloader",
        "efi");
    ERR("--kernel", "more than once", "--kernel", "/k", "--kernel", "/k2");
}

/* ---- devices ---- */

static void test_virtio_blk(void **state)
{
    (void)state;
    OK("--device", "virtio-blk,path=/vm/disk.raw");
    assert_int_equal(cfg.n_devices, 1);
    assert_int_equal(cfg.devices[0].type, DEV_BLK);
    assert_string_equal(cfg.devices[0].blk.path, "/vm/disk.raw");
    assert_int_equal(cfg.devices[0].blk.format, BLK_FMT_RAW);
    assert_null(cfg.devices[0].blk.device_id);
    assert_false(cfg.devices[0].blk.readonly);

    OK("--device", "virtio-blk,path=/a.qcow2,format=qcow2,deviceId=12345678901234567890,readonly",
       "--device=virtio-blk,format=raw,path=/b,readonly=off");
    assert_int_equal(cfg.n_devices, 2);
    assert_int_equal(cfg.devices[0].blk.format, BLK_FMT_QCOW2);
    assert_string_equal(cfg.devices[0].blk.device_id, "12345678901234567890");
    assert_true(cfg.devices[0].blk.readonly);
    assert_int_equal(cfg.devices[1].blk.format, BLK_FMT_RAW);
    assert_false(cfg.devices[1].blk.readonly);
    OK("--device", "virtio-blk,path=/a,readonly=true");
    assert_true(cfg.devices[0].blk.readonly);
    OK("--device", "virtio-blk,path=\"/dir,with,commas/disk\"");
    assert_string_equal(cfg.devices[0].blk.path, "/dir,with,commas/disk");

    ERR("--device \"virtio-blk\"", "needs path=", "--device", "virtio-blk");
    ERR("--device \"virtio-blk,path=/a,format=vmdk\"", "unknown format \"vmdk\"", "--device",
        "virtio-blk,path=/a,format=vmdk");
    ERR("--device", "deviceId \"123456789012345678901\" is longer than 20", "--device",
        "virtio-blk,path=/a,deviceId=123456789012345678901");
    ERR("--device", "path given twice", "--device", "virtio-blk,path=/a,path=/b");
    ERR("--device", "unknown key \"size\"", "--device", "virtio-blk,path=/a,size=1");
    ERR("--device", "empty value for path", "--device", "virtio-blk,path=");
    ERR("--device", "path needs a value", "--device", "virtio-blk,path");
    ERR("--device", "invalid value readonly=maybe", "--device",
        "virtio-blk,path=/a,readonly=maybe");
    ERR("--device", "empty value for format", "--device", "virtio-blk,path=/a,format=");
}

static void test_virtio_net(void **state)
{
    (void)state;
    const struct dev_net *n;

    /* vfkit's form: offloading and the vfkit magic on by default. */
    OK("--device", "virtio-net,unixSocketPath=/tmp/gvproxy.sock,mac=5a:94:ef:e4:0c:ee");
    n = &cfg.devices[0].net;
    assert_int_equal(cfg.devices[0].type, DEV_NET);
    assert_int_equal(n->type, NET_UNIXGRAM);
    assert_true(n->unix_socket_path_form);
    assert_string_equal(n->path, "/tmp/gvproxy.sock");
    assert_int_equal(n->fd, -1);
    assert_true(n->mac_set);
    static const uint8_t mac[6] = {0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee};
    assert_memory_equal(n->mac, mac, 6);
    assert_true(n->offloading);
    assert_true(n->vfkit_magic);

    OK("--device", "virtio-net,unixSocketPath=/s,offloading=off,vfkitMagic=false");
    n = &cfg.devices[0].net;
    assert_false(n->offloading);
    assert_false(n->vfkit_magic);
    assert_false(n->mac_set);

    /* type= form: both off by default. */
    OK("--device", "virtio-net,type=unixgram,path=/s,mac=5A:94:EF:E4:0C:EE");
    n = &cfg.devices[0].net;
    assert_int_equal(n->type, NET_UNIXGRAM);
    assert_false(n->unix_socket_path_form);
    assert_false(n->offloading);
    assert_false(n->vfkit_magic);
    assert_memory_equal(n->mac, mac, 6);

    OK("--device", "virtio-net,type=unixstream,fd=3,offloading=on");
    n = &cfg.devices[0].net;
    assert_int_equal(n->type, NET_UNIXSTREAM);
    assert_null(n->path);
    assert_int_equal(n->fd, 3);
    assert_true(n->offloading);
    assert_false(n->vfkit_magic);

    /* vfkit's fd=N form and nat. */
    OK("--device", "virtio-net,fd=4,mac=5a:94:ef:e4:0c:ee");
    n = &cfg.devices[0].net;
    assert_int_equal(n->type, NET_UNIXGRAM);
    assert_int_equal(n->fd, 4);
    assert_false(n->offloading);
    assert_false(n->vfkit_magic);
    OK("--device", "virtio-net,nat,mac=5a:94:ef:e4:0c:ee");
    assert_int_equal(cfg.devices[0].net.type, NET_NAT);
    assert_int_equal(cfg.devices[0].net.fd, -1);
    assert_null(cfg.devices[0].net.path);
}

static void test_virtio_net_errors(void **state)
{
    (void)state;
    ERR("--device \"virtio-net\"", "needs unixSocketPath=", "--device", "virtio-net");
    ERR("--device", "unixSocketPath cannot be combined", "--device",
        "virtio-net,unixSocketPath=/s,type=unixgram,path=/p");
    ERR("--device", "unixSocketPath cannot be combined", "--device",
        "virtio-net,unixSocketPath=/s,fd=3");
    ERR("--device", "path and fd are mutually exclusive", "--device",
        "virtio-net,type=unixgram,path=/s,fd=3");
    ERR("--device", "path and fd are mutually exclusive", "--device", "virtio-net,path=/s,fd=3");
    ERR("--device", "type=unixstream needs path= or fd=", "--device", "virtio-net,type=unixstream");
    ERR("--device", "vfkitMagic is only supported with type=unixgram", "--device",
        "virtio-net,type=unixstream,path=/s,vfkitMagic=on");
    ERR("--device", "unknown type \"tcp\"", "--device", "virtio-net,type=tcp,path=/s");
    ERR("--device", "path= needs type=", "--device", "virtio-net,path=/s");
    ERR("--device", "nat cannot be combined", "--device", "virtio-net,nat,path=/s");
    ERR("--device", "nat cannot be combined", "--device", "virtio-net,nat,unixSocketPath=/s");
    ERR("--device", "need a socket backend", "--device", "virtio-net,nat,offloading=on");
    ERR("--device", "invalid mac \"zz:94:ef:e4:0c:ee\"", "--device",
        "virtio-net,unixSocketPath=/s,mac=zz:94:ef:e4:0c:ee");
    ERR("--device", "invalid mac \"5a:94:ef:e4:0c\"", "--device",
        "virtio-net,unixSocketPath=/s,mac=5a:94:ef:e4:0c");
    ERR("--device", "invalid mac \"5a-94-ef-e4-0c-ee\"", "--device",
        "virtio-net,unixSocketPath=/s,mac=5a-94-ef-e4-0c-ee");
    ERR("--device", "invalid mac", "--device",
        "virtio-net,unixSocketPath=/s,mac=5a:94:ef:e4:0c:eee");
    ERR("--device", "invalid value offloading=yes", "--device",
        "virtio-net,type=unixgram,path=/s,offloading=yes");
    ERR("--device", "invalid number fd=-1", "--device", "virtio-net,type=unixgram,fd=-1");
    ERR("--device", "fd=2147483648 is out of range", "--device",
        "virtio-net,type=unixgram,fd=2147483648");
    ERR("--device", "mac given twice", "--device",
        "virtio-net,unixSocketPath=/s,mac=5a:94:ef:e4:0c:ee,mac=5a:94:ef:e4:0c:ef");
    ERR("--device", "unknown key \"mtu\"", "--device", "virtio-net,unixSocketPath=/s,mtu=1500");

    char arg[300], path[120];
    memset(path, 's', sizeof(path));
    path[0] = '/';
    path[108] = '\0';
    snprintf(arg, sizeof(arg), "virtio-net,type=unixgram,path=%s", path);
    ERR("--device", "path is longer than 107 bytes", "--device", arg);
    snprintf(arg, sizeof(arg), "virtio-net,unixSocketPath=%s", path);
    ERR("--device", "unixSocketPath is longer than 107 bytes", "--device", arg);
    path[107] = '\0';
    snprintf(arg, sizeof(arg), "virtio-net,unixSocketPath=%s", path);
    OK("--device", arg);
}

static void test_virtio_serial(void **state)
{
    (void)state;
    OK("--device", "virtio-serial,logFilePath=/tmp/console.log");
    assert_int_equal(cfg.devices[0].type, DEV_SERIAL);
    assert_int_equal(cfg.devices[0].serial.mode, SERIAL_LOGFILE);
    assert_string_equal(cfg.devices[0].serial.log_file_path, "/tmp/console.log");
    OK("--device", "virtio-serial,stdio");
    assert_int_equal(cfg.devices[0].serial.mode, SERIAL_STDIO);
    assert_null(cfg.devices[0].serial.log_file_path);
    OK("--device", "virtio-serial,pty", "--device", "virtio-serial,logFilePath=/a");
    assert_int_equal(cfg.devices[0].serial.mode, SERIAL_PTY);
    assert_int_equal(cfg.devices[1].serial.mode, SERIAL_LOGFILE);

    ERR("--device \"virtio-serial\"", "exactly one of", "--device", "virtio-serial");
    ERR("--device", "exactly one of", "--device", "virtio-serial,stdio,pty");
    ERR("--device", "exactly one of", "--device", "virtio-serial,logFilePath=/a,stdio");
    ERR("--device", "exactly one of", "--device", "virtio-serial,stdio=off");
    ERR("--device \"virtio-serial,stdio\"", "only one virtio-serial device can use stdio",
        "--device", "virtio-serial,stdio", "--device", "virtio-serial,stdio");
    ERR("--device", "unknown key \"baud\"", "--device", "virtio-serial,stdio,baud=9600");
}

static void test_virtio_vsock(void **state)
{
    (void)state;
    OK("--device", "virtio-vsock,port=1024,socketURL=/tmp/vm.sock");
    assert_int_equal(cfg.devices[0].type, DEV_VSOCK);
    assert_int_equal(cfg.devices[0].vsock.port, 1024);
    assert_string_equal(cfg.devices[0].vsock.socket_url, "/tmp/vm.sock");
    assert_true(cfg.devices[0].vsock.listen);
    OK("--device", "virtio-vsock,port=1,socketURL=/a,connect", "--device",
       "virtio-vsock,port=2,socketURL=/b,listen", "--device",
       "virtio-vsock,port=4294967294,socketURL=/c,listen=false");
    assert_false(cfg.devices[0].vsock.listen);
    assert_true(cfg.devices[1].vsock.listen);
    assert_false(cfg.devices[2].vsock.listen);
    assert_int_equal(cfg.devices[2].vsock.port, 4294967294u);

    ERR("--device", "needs port=", "--device", "virtio-vsock,socketURL=/a");
    ERR("--device", "needs socketURL=", "--device", "virtio-vsock,port=1");
    ERR("--device", "listen and connect are mutually exclusive", "--device",
        "virtio-vsock,port=1,socketURL=/a,listen,connect");
    ERR("--device \"virtio-vsock,port=7,socketURL=/b\"", "vsock port 7 is already used", "--device",
        "virtio-vsock,port=7,socketURL=/a", "--device", "virtio-vsock,port=7,socketURL=/b");
    ERR("--device", "port=4294967295 is out of range", "--device",
        "virtio-vsock,port=4294967295,socketURL=/a");
    ERR("--device", "invalid number port=x", "--device", "virtio-vsock,port=x,socketURL=/a");
    char arg[300], path[120];
    memset(path, 'v', sizeof(path));
    path[0] = '/';
    path[108] = '\0';
    snprintf(arg, sizeof(arg), "virtio-vsock,port=1,socketURL=%s", path);
    ERR("--device", "socketURL is longer than 107 bytes", "--device", arg);
}

static void test_virtio_fs(void **state)
{
    (void)state;
    OK("--device", "virtio-fs,sharedDir=/Users/user/shared-dir,mountTag=MOUNT_TAG");
    assert_int_equal(cfg.devices[0].type, DEV_FS);
    assert_string_equal(cfg.devices[0].fs.shared_dir, "/Users/user/shared-dir");
    assert_string_equal(cfg.devices[0].fs.mount_tag, "MOUNT_TAG");
    const char *tag36 = "a2a0ee2c717462feb1de2f5afd59de5fd2d8";
    char arg[128];
    snprintf(arg, sizeof(arg), "virtio-fs,sharedDir=/a,mountTag=%s", tag36);
    OK("--device", arg, "--device", "virtio-fs,sharedDir=/a,mountTag=other");
    assert_int_equal(strlen(cfg.devices[0].fs.mount_tag), 36);

    snprintf(arg, sizeof(arg), "virtio-fs,sharedDir=/a,mountTag=%sX", tag36);
    ERR("--device", "is longer than 36 bytes", "--device", arg);
    ERR("--device \"virtio-fs,sharedDir=/b,mountTag=t\"", "mountTag \"t\" is already used",
        "--device", "virtio-fs,sharedDir=/a,mountTag=t", "--device",
        "virtio-fs,sharedDir=/b,mountTag=t");
    ERR("--device", "needs sharedDir=", "--device", "virtio-fs,mountTag=t");
    ERR("--device", "needs mountTag=", "--device", "virtio-fs,sharedDir=/a");
}

static void test_simple_devices(void **state)
{
    (void)state;
    OK("--device", "virtio-rng", "--device", "virtio-balloon", "--device", "virtio-gpu", "--device",
       "virtio-gpu,width=1920,height=1080", "--device", "virtio-input,keyboard", "--device",
       "virtio-input,pointing");
    assert_int_equal(cfg.n_devices, 6);
    assert_int_equal(cfg.devices[0].type, DEV_RNG);
    assert_int_equal(cfg.devices[1].type, DEV_BALLOON);
    assert_int_equal(cfg.devices[2].gpu.width, 800);
    assert_int_equal(cfg.devices[2].gpu.height, 600);
    assert_int_equal(cfg.devices[3].gpu.width, 1920);
    assert_int_equal(cfg.devices[3].gpu.height, 1080);
    assert_int_equal(dev_input_of(&cfg.devices[4])->kind, INPUT_KEYBOARD);
    assert_int_equal(dev_input_of(&cfg.devices[5])->kind, INPUT_POINTING);

    ERR("--device \"virtio-rng,foo\"", "unknown key \"foo\"", "--device", "virtio-rng,foo");
    ERR("--device", "unknown key \"size\"", "--device", "virtio-balloon,size=1");
    ERR("--device", "width=0 is out of range", "--device", "virtio-gpu,width=0");
    ERR("--device", "height=16385 is out of range", "--device", "virtio-gpu,height=16385");
    ERR("--device", "exactly one of keyboard or pointing", "--device", "virtio-input");
    ERR("--device", "exactly one of keyboard or pointing", "--device",
        "virtio-input,keyboard,pointing");
}

static void test_device_grammar_errors(void **state)
{
    (void)state;
    ERR("--device \"virtio-foo\"", "unknown device type \"virtio-foo\"", "--device", "virtio-foo");
    ERR("--device \"virtio-nvme,path=/a\"", "unknown device type", "--device",
        "virtio-nvme,path=/a");
    ERR("--device \"path=/a\"", "unknown device type \"path\"", "--device", "path=/a");
    ERR("--device", "empty value", "--device", "");
    ERR("--device", "empty item", "--device", "virtio-rng,");
    ERR("--device", "empty item", "--device", "virtio-blk,,path=/a");
    ERR("--device", "empty item", "--device", ",virtio-rng");
    ERR("--device", "empty key name", "--device", "virtio-blk,=x");
    ERR("--device", "quote in a key name", "--device", "virtio-blk,\"path\"=/a");
    ERR("--device", "needs a value", "--device");
    /* A failure in a later device frees the earlier ones too. */
    ERR("--device \"virtio-blk\"", "needs path=", "--device", "virtio-rng", "--device",
        "virtio-blk");

    /* The number of devices is bounded. */
    const char *argv[5 + 2 * 130 + 1] = {BASE};
    int argc = 5;
    for (int i = 0; i < 129; i++) {
        argv[argc++] = "--device";
        argv[argc++] = "virtio-rng";
    }
    argv[argc] = NULL;
    expect_err(parse_argv(argv), "--device", "too many devices");
}

/* Every key of every device: given bare where a value is needed, or a bad boolean. */
static void test_device_key_value_errors(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *why;
    } bad[] = {
        {"virtio-blk,path=/a,format", "format needs a value"},
        {"virtio-blk,path=/a,deviceId", "deviceId needs a value"},
        {"virtio-net,unixSocketPath", "unixSocketPath needs a value"},
        {"virtio-net,type", "type needs a value"},
        {"virtio-net,type=unixgram,path", "path needs a value"},
        {"virtio-net,type=unixgram,fd", "fd needs a value"},
        {"virtio-net,nat=maybe", "invalid value nat=maybe"},
        {"virtio-net,nat,mac", "mac needs a value"},
        {"virtio-net,unixSocketPath=/s,vfkitMagic=2", "invalid value vfkitMagic=2"},
        {"virtio-serial,logFilePath", "logFilePath needs a value"},
        {"virtio-serial,stdio=maybe", "invalid value stdio=maybe"},
        {"virtio-serial,pty=maybe", "invalid value pty=maybe"},
        {"virtio-vsock,port", "port needs a value"},
        {"virtio-vsock,port=1,socketURL", "socketURL needs a value"},
        {"virtio-vsock,port=1,socketURL=/a,listen=maybe", "invalid value listen=maybe"},
        {"virtio-vsock,port=1,socketURL=/a,connect=maybe", "invalid value connect=maybe"},
        {"virtio-fs,sharedDir", "sharedDir needs a value"},
        {"virtio-fs,sharedDir=/a,mountTag", "mountTag needs a value"},
        {"virtio-gpu,width", "width needs a value"},
        {"virtio-gpu,height=x", "invalid number height=x"},
        {"virtio-input,keyboard=maybe", "invalid value keyboard=maybe"},
        {"virtio-input,pointing=maybe", "invalid value pointing=maybe"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char quoted[128];
        snprintf(quoted, sizeof(quoted), "--device \"%s\"", bad[i].spec);
        expect_err(PARSE(BASE, "--device", bad[i].spec), quoted, bad[i].why);
    }
}

/* The value-grammar helpers on their own, including inputs argv cannot produce. */
static void test_value_helpers(void **state)
{
    (void)state;
    struct vm_config c;
    vm_config_init(&c);
    assert_int_equal(parse_device("", &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "--device \"\": empty value"));
    assert_int_equal(parse_bootloader("", &c, err, sizeof(err)), -EINVAL);
    assert_int_equal(parse_timesync("", &c, err, sizeof(err)), -EINVAL);
    assert_int_equal(c.n_devices, 0);
    vm_config_free(&c);

    uint64_t v;
    assert_int_equal(parse_u64("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(parse_u64("18446744073709551616", &v), -ERANGE);
    assert_int_equal(parse_u64("", &v), -EINVAL);
    assert_int_equal(parse_u64("1a", &v), -EINVAL);

    bool b;
    assert_int_equal(parse_bool("on", &b), 0);
    assert_true(b);
    assert_int_equal(parse_bool("off", &b), 0);
    assert_false(b);
    assert_int_equal(parse_bool("True", &b), -EINVAL);
    assert_int_equal(parse_bool("1", &b), -EINVAL);

    uint8_t mac[6];
    assert_int_equal(parse_mac("aA:bB:0c:D0:e1:F2", mac), 0);
    static const uint8_t want[6] = {0xaa, 0xbb, 0x0c, 0xd0, 0xe1, 0xf2};
    assert_memory_equal(mac, want, 6);
    assert_int_equal(parse_mac("aa:bb:cc:dd:ee:f", mac), -EINVAL);
    assert_int_equal(parse_mac("aa:bb:cc:dd:ee:fg", mac), -EINVAL);
    assert_int_equal(parse_mac("aa:bb:cc:dd:ee-ff", mac), -EINVAL);
    assert_int_equal(sun_path_max(), 107);

    /* A message that does not fit is cut, never overrun. */
    char small[16];
    memset(small, 'x', sizeof(small));
    assert_int_equal(parse_device("virtio-foo", &c, small, 8), -EINVAL);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(small[8], 'x');
}

/* ---- argv shape and actions ---- */

static void test_argv_errors(void **state)
{
    (void)state;
    ERR("unknown option \"--foo\"", NULL, "--foo");
    ERR("unknown option \"--foo\"", NULL, "--foo=bar");
    ERR("unknown option \"-z\"", NULL, "-z");
    ERR("unexpected argument \"disk.img\"", NULL, "disk.img");
    ERR("unexpected argument \"-\"", NULL, "-");
    ERR("unexpected argument \"--\"", NULL, "--");
    ERR("unknown option \"--cpu\"", NULL, "--cpu", "2");
}

static void test_actions(void **state)
{
    (void)state;
    OK("--print-config");
    assert_int_equal(act, CLI_PRINT_CONFIG);
    OK("--print-config=false");
    assert_int_equal(act, CLI_RUN);
    OK_RAW("--help");
    assert_int_equal(act, CLI_HELP);
    OK_RAW("-h", "--bogus");
    assert_int_equal(act, CLI_HELP);
    OK_RAW("--version");
    assert_int_equal(act, CLI_VERSION);
    OK("--help=false", "--version=off");
    assert_int_equal(act, CLI_RUN);
    ERR("--help", "\"maybe\"", "--help=maybe");
    /* Parsing stops at --help/--version; cpus and memory are not needed. */
    OK_RAW("--cpus", "2", "--version", "--cpus", "0");
    assert_int_equal(act, CLI_VERSION);
    assert_int_equal(cfg.cpus, 0);
    /* An error before --help is still an error. */
    ERR_RAW("--cpus", "\"0\"", "--cpus", "0", "--help");
    /* --print-config still needs a complete command line. */
    ERR_RAW("--cpus", "required", "--print-config", "-m", "1");
    assert_non_null(strstr(cli_usage(), "--device"));
    assert_non_null(strstr(cli_usage(), "--restful-uri"));
}

/* ---- whole command lines from the seed document and clients ---- */

static void test_usage_md_examples(void **state)
{
    (void)state;
    OK_RAW("--cpus", "2", "--memory", "2048");
    assert_int_equal(cfg.cpus, 2);
    assert_int_equal(cfg.memory_mib, 2048);
    assert_int_equal(cfg.n_devices, 0);

    OK("--bootloader", "efi");
    assert_int_equal(cfg.boot.kind, BOOT_EFI);

    OK("--device", "virtio-blk,path=/Users/user/disk-image.raw,format=raw");
    assert_string_equal(cfg.devices[0].blk.path, "/Users/user/disk-image.raw");
    assert_int_equal(cfg.devices[0].blk.format, BLK_FMT_RAW);

    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    OK("--device",
       "virtio-net,type=unixgram,path=/Users/user/vm-network.sock,mac=ff:ff:ff:ff:ff:ff");
    assert_int_equal(cfg.devices[0].net.type, NET_UNIXGRAM);
    assert_string_equal(cfg.devices[0].net.path, "/Users/user/vm-network.sock");
    assert_memory_equal(cfg.devices[0].net.mac, bcast, 6);
    assert_false(cfg.devices[0].net.offloading);
    assert_false(cfg.devices[0].net.vfkit_magic);

    OK("--device", "virtio-net,type=unixgram,path=/Users/user/vm-network.sock,"
                   "mac=ff:ff:ff:ff:ff:ff,offloading=on,vfkitMagic=on");
    assert_true(cfg.devices[0].net.offloading);
    assert_true(cfg.devices[0].net.vfkit_magic);

    /* usage.md writes fd=<passt_fd>; a real number stands in for it. */
    OK("--device", "virtio-net,type=unixstream,fd=5,mac=ff:ff:ff:ff:ff:ff,offloading=true");
    assert_int_equal(cfg.devices[0].net.type, NET_UNIXSTREAM);
    assert_int_equal(cfg.devices[0].net.fd, 5);
    assert_true(cfg.devices[0].net.offloading);
    ERR("--device", "invalid number fd=<passt_fd>", "--device",
        "virtio-net,type=unixstream,fd=<passt_fd>,mac=ff:ff:ff:ff:ff:ff,offloading=true");

    OK("--device", "virtio-serial,logFilePath=/Users/user/vm-output.log");
    assert_string_equal(cfg.devices[0].serial.log_file_path, "/Users/user/vm-output.log");

    OK("--device", "virtio-vsock,port=1024,socketURL=/Users/user/vm-socket.sock");
    assert_int_equal(cfg.devices[0].vsock.port, 1024);
    assert_string_equal(cfg.devices[0].vsock.socket_url, "/Users/user/vm-socket.sock");

    OK("--device", "virtio-fs,sharedDir=/Users/user/shared-dir,mountTag=MOUNT_TAG");
    assert_string_equal(cfg.devices[0].fs.mount_tag, "MOUNT_TAG");
}

static void test_podman_command_line(void **state)
{
    (void)state;
    OK_RAW("--cpus", "4", "--memory", "4096", "--bootloader",
           "efi,variable-store=/home/u/.local/share/containers/podman/machine/libkrun/"
           "efi-bl-podman-machine-default,create",
           "--device",
           "virtio-blk,path=/home/u/.local/share/containers/podman/machine/libkrun/"
           "podman-machine-default-arm64.raw",
           "--device", "virtio-rng", "--device",
           "virtio-vsock,port=1025,socketURL=/run/user/1000/podman/"
           "podman-machine-default.sock,listen",
           "--device",
           "virtio-serial,logFilePath=/home/u/.local/share/containers/podman/machine/libkrun/"
           "podman-machine-default.log",
           "--device",
           "virtio-net,unixSocketPath=/run/user/1000/podman/podman-machine-default-gvproxy.sock,"
           "mac=5a:94:ef:e4:0c:ee",
           "--device", "virtio-fs,sharedDir=/Users,mountTag=a2a0ee2c717462feb1de2f5afd59de5fd2d8",
           "--restful-uri", "tcp://localhost:54321", "--pidfile", "/tmp/krunkit.pid",
           "--krun-log-level", "3", "--log-file", "/tmp/krunkit.log", "--timesync",
           "vsockPort=1026", "--nested", "--oem-string", "io.systemd.credential:x=y", "--gui");
    assert_int_equal(cfg.cpus, 4);
    assert_int_equal(cfg.memory_mib, 4096);
    assert_int_equal(cfg.boot.kind, BOOT_EFI);
    assert_true(cfg.boot.create);
    assert_int_equal(cfg.n_devices, 6);
    assert_int_equal(cfg.devices[0].type, DEV_BLK);
    assert_int_equal(cfg.devices[1].type, DEV_RNG);
    assert_int_equal(cfg.devices[2].type, DEV_VSOCK);
    assert_true(cfg.devices[2].vsock.listen);
    assert_int_equal(cfg.devices[3].type, DEV_SERIAL);
    assert_int_equal(cfg.devices[4].type, DEV_NET);
    assert_true(cfg.devices[4].net.vfkit_magic);
    assert_int_equal(cfg.devices[5].type, DEV_FS);
    assert_int_equal(cfg.rest.scheme, REST_TCP);
    assert_int_equal(cfg.rest.port, 54321);
    assert_string_equal(cfg.pidfile, "/tmp/krunkit.pid");
    assert_string_equal(cfg.log_file, "/tmp/krunkit.log");
    assert_int_equal(cfg.timesync_port, 1026);
    assert_true(cfg.nested);
    assert_true(cfg.gui);
    assert_int_equal(cfg.n_oem_strings, 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_cpus),
        T(test_cpus_errors),
        T(test_memory),
        T(test_memory_errors),
        T(test_host_memory_check),
        T(test_nested_gui_flags),
        T(test_log_level),
        T(test_paths),
        T(test_oem_strings),
        T(test_restful_uri),
        T(test_restful_uri_errors),
        T(test_timesync),
        T(test_bootloader_efi),
        T(test_bootloader_linux),
        T(test_vfkit_kernel_options),
        T(test_virtio_blk),
        T(test_virtio_net),
        T(test_virtio_net_errors),
        T(test_virtio_serial),
        T(test_virtio_vsock),
        T(test_virtio_fs),
        T(test_simple_devices),
        T(test_device_grammar_errors),
        T(test_device_key_value_errors),
        T(test_value_helpers),
        T(test_argv_errors),
        T(test_actions),
        T(test_usage_md_examples),
        T(test_podman_command_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
