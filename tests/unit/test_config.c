/*
 * vm_config_to_json: every parsed field appears under its documented key
 * (docs/krunkit.1, CONFIGURATION JSON), read back with jansson; absent
 * values are null; non-UTF-8 paths still give valid JSON.
 */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/args.h"
#include "core/config.h"

static json_t *to_json(const char **argv)
{
    struct vm_config cfg;
    enum cli_action act;
    char err[512];
    int argc = 0;
    while (argv[argc])
        argc++;
    if (cli_parse(argc, (char **)argv, &cfg, &act, err, sizeof(err)) < 0)
        fail_msg("parse failed: %s", err);
    char *text = vm_config_to_json(&cfg);
    assert_non_null(text);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root)
        fail_msg("invalid JSON (%s): %s", jerr.text, text);
    free(text);
    vm_config_free(&cfg);
    return root;
}

#define TO_JSON(...) to_json((const char *[]){"krunkit", __VA_ARGS__, NULL})

static json_t *get(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        fail_msg("key \"%s\" missing", key);
    return v;
}

static void assert_str(json_t *obj, const char *key, const char *want)
{
    json_t *v = get(obj, key);
    if (!json_is_string(v))
        fail_msg("key \"%s\" is not a string", key);
    assert_string_equal(json_string_value(v), want);
}

static void assert_int(json_t *obj, const char *key, json_int_t want)
{
    json_t *v = get(obj, key);
    if (!json_is_integer(v))
        fail_msg("key \"%s\" is not an integer", key);
    assert_int_equal(json_integer_value(v), want);
}

static void assert_bool(json_t *obj, const char *key, bool want)
{
    json_t *v = get(obj, key);
    if (!json_is_boolean(v))
        fail_msg("key \"%s\" is not a boolean", key);
    assert_int_equal(json_is_true(v), want);
}

static void assert_null_key(json_t *obj, const char *key)
{
    if (!json_is_null(get(obj, key)))
        fail_msg("key \"%s\" is not null", key);
}

static void test_defaults(void **state)
{
    (void)state;
    json_t *j = TO_JSON("--cpus", "2", "--memory", "2G");
    assert_int(j, "cpus", 2);
    assert_int(j, "memoryMiB", 2048);
    assert_bool(j, "nested", false);
    assert_str(get(j, "bootloader"), "kind", "default");
    assert_int_equal(json_array_size(get(j, "devices")), 0);
    assert_null_key(j, "restfulUri");
    assert_null_key(j, "pidfile");
    assert_null_key(j, "logFile");
    assert_int(j, "logLevel", 3);
    assert_null_key(j, "timesync");
    assert_null_key(j, "firmwarePath");
    assert_int_equal(json_array_size(get(j, "oemStrings")), 0);
    assert_bool(j, "gui", false);
    json_decref(j);
}

static void test_top_level_fields(void **state)
{
    (void)state;
    json_t *j = TO_JSON("-c", "8", "-m", "1T", "--nested", "--restful-uri", "unix:///run/k.sock",
                        "--pidfile", "/run/k.pid", "--log-file", "/var/log/k.log",
                        "--krun-log-level", "5", "--timesync", "vsockPort=1234", "-f", "/fw.fd",
                        "--oem-string", "one", "--oem-string", "two \"quoted\"", "--gui");
    assert_int(j, "cpus", 8);
    assert_int(j, "memoryMiB", 1024 * 1024);
    assert_bool(j, "nested", true);
    assert_str(j, "restfulUri", "unix:///run/k.sock");
    assert_str(j, "pidfile", "/run/k.pid");
    assert_str(j, "logFile", "/var/log/k.log");
    assert_int(j, "logLevel", 5);
    assert_int(get(j, "timesync"), "vsockPort", 1234);
    assert_str(j, "firmwarePath", "/fw.fd");
    json_t *oem = get(j, "oemStrings");
    assert_int_equal(json_array_size(oem), 2);
    assert_string_equal(json_string_value(json_array_get(oem, 0)), "one");
    assert_string_equal(json_string_value(json_array_get(oem, 1)), "two \"quoted\"");
    assert_bool(j, "gui", true);
    json_decref(j);

    j = TO_JSON("-c", "1", "-m", "1", "--restful-uri", "tcp://localhost:8081");
    assert_str(j, "restfulUri", "tcp://localhost:8081");
    json_decref(j);
}

static void test_bootloaders(void **state)
{
    (void)state;
    json_t *j = TO_JSON("-c", "1", "-m", "1", "--bootloader", "efi,variable-store=/v,create");
    json_t *b = get(j, "bootloader");
    assert_str(b, "kind", "efi");
    assert_str(b, "variableStore", "/v");
    assert_bool(b, "create", true);
    json_decref(j);

    j = TO_JSON("-c", "1", "-m", "1", "--bootloader", "efi");
    b = get(j, "bootloader");
    assert_null_key(b, "variableStore");
    assert_bool(b, "create", false);
    json_decref(j);

    j = TO_JSON("-c", "1", "-m", "1", "--bootloader",
                "linux,kernel=/k,initrd=/i,cmdline=console=ttyS0,115200 quiet");
    b = get(j, "bootloader");
    assert_str(b, "kind", "linux");
    assert_str(b, "kernel", "/k");
    assert_str(b, "initrd", "/i");
    assert_str(b, "cmdline", "console=ttyS0,115200 quiet");
    json_decref(j);

    j = TO_JSON("-c", "1", "-m", "1", "--kernel", "/k");
    b = get(j, "bootloader");
    assert_str(b, "kind", "linux");
    assert_null_key(b, "initrd");
    assert_null_key(b, "cmdline");
    json_decref(j);
}

static void test_devices(void **state)
{
    (void)state;
    json_t *j = TO_JSON(
        "-c", "1", "-m", "1", "--device",
        "virtio-blk,path=/d.qcow2,format=qcow2,deviceId=disk0,readonly", "--device",
        "virtio-blk,path=/d.raw", "--device",
        "virtio-net,unixSocketPath=/g.sock,mac=5A:94:EF:E4:0C:EE", "--device",
        "virtio-net,type=unixstream,fd=7", "--device", "virtio-net,type=unixgram,path=/n.sock",
        "--device", "virtio-net,nat", "--device", "virtio-serial,logFilePath=/c.log", "--device",
        "virtio-serial,pty", "--device", "virtio-vsock,port=1025,socketURL=/v.sock,connect",
        "--device", "virtio-fs,sharedDir=/share,mountTag=tag", "--device", "virtio-rng", "--device",
        "virtio-balloon", "--device", "virtio-gpu,width=1024,height=768", "--device",
        "virtio-input,pointing");
    json_t *devs = get(j, "devices");
    assert_int_equal(json_array_size(devs), 14);
    json_t *d;

    d = json_array_get(devs, 0);
    assert_str(d, "kind", "virtio-blk");
    assert_str(d, "path", "/d.qcow2");
    assert_str(d, "format", "qcow2");
    assert_str(d, "deviceId", "disk0");
    assert_bool(d, "readonly", true);
    d = json_array_get(devs, 1);
    assert_str(d, "format", "raw");
    assert_null_key(d, "deviceId");
    assert_bool(d, "readonly", false);

    d = json_array_get(devs, 2);
    assert_str(d, "kind", "virtio-net");
    assert_str(d, "type", "unixgram");
    assert_str(d, "unixSocketPath", "/g.sock");
    assert_str(d, "mac", "5a:94:ef:e4:0c:ee");
    assert_bool(d, "offloading", true);
    assert_bool(d, "vfkitMagic", true);
    assert_null(json_object_get(d, "path"));
    d = json_array_get(devs, 3);
    assert_str(d, "type", "unixstream");
    assert_int(d, "fd", 7);
    assert_null_key(d, "mac");
    assert_bool(d, "offloading", false);
    assert_bool(d, "vfkitMagic", false);
    d = json_array_get(devs, 4);
    assert_str(d, "path", "/n.sock");
    assert_null(json_object_get(d, "unixSocketPath"));
    d = json_array_get(devs, 5);
    assert_str(d, "type", "nat");

    d = json_array_get(devs, 6);
    assert_str(d, "kind", "virtio-serial");
    assert_str(d, "logFilePath", "/c.log");
    assert_bool(d, "stdio", false);
    assert_bool(d, "pty", false);
    d = json_array_get(devs, 7);
    assert_null_key(d, "logFilePath");
    assert_bool(d, "pty", true);

    d = json_array_get(devs, 8);
    assert_str(d, "kind", "virtio-vsock");
    assert_int(d, "port", 1025);
    assert_str(d, "socketURL", "/v.sock");
    assert_bool(d, "listen", false);

    d = json_array_get(devs, 9);
    assert_str(d, "kind", "virtio-fs");
    assert_str(d, "sharedDir", "/share");
    assert_str(d, "mountTag", "tag");

    assert_str(json_array_get(devs, 10), "kind", "virtio-rng");
    assert_str(json_array_get(devs, 11), "kind", "virtio-balloon");
    d = json_array_get(devs, 12);
    assert_str(d, "kind", "virtio-gpu");
    assert_int(d, "width", 1024);
    assert_int(d, "height", 768);
    d = json_array_get(devs, 13);
    assert_str(d, "kind", "virtio-input");
    assert_str(d, "inputType", "pointing");
    json_decref(j);
}

static void test_non_utf8_path(void **state)
{
    (void)state;
    /* \xff is never valid UTF-8; \xc3\xa9 (e acute) is. */
    json_t *j = TO_JSON("-c", "1", "-m", "1", "--pidfile", "/tmp/a\xff\xc3\xa9z");
    assert_str(j, "pidfile", "/tmp/a\xef\xbf\xbd\xc3\xa9z");
    json_decref(j);
    j = TO_JSON("-c", "1", "-m", "1", "--oem-string", "\xc3(", "--oem-string", "\xe2\x82");
    json_t *oem = get(j, "oemStrings");
    assert_string_equal(json_string_value(json_array_get(oem, 0)), "\xef\xbf\xbd(");
    assert_string_equal(json_string_value(json_array_get(oem, 1)), "\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(j);
}

static void test_names_and_lifetime(void **state)
{
    (void)state;
    static const char *const names[] = {
        "virtio-blk", "virtio-net",     "virtio-serial", "virtio-vsock", "virtio-fs",
        "virtio-rng", "virtio-balloon", "virtio-gpu",    "virtio-input",
    };
    static const enum dev_type types[] = {DEV_BLK, DEV_NET,     DEV_SERIAL, DEV_VSOCK, DEV_FS,
                                          DEV_RNG, DEV_BALLOON, DEV_GPU,    DEV_INPUT};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        assert_string_equal(dev_type_name(types[i]), names[i]);

    struct vm_config cfg;
    vm_config_init(&cfg);
    assert_int_equal(cfg.log_level, 3);
    assert_int_equal(cfg.rest.scheme, REST_NONE);
    assert_int_equal(cfg.boot.kind, BOOT_DEFAULT);
    assert_null(cfg.devices);
    vm_config_free(&cfg);
    /* Freeing twice is harmless: free leaves an initialised config. */
    vm_config_free(&cfg);
    assert_int_equal(cfg.log_level, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),      cmocka_unit_test(test_top_level_fields),
        cmocka_unit_test(test_bootloaders),   cmocka_unit_test(test_devices),
        cmocka_unit_test(test_non_utf8_path), cmocka_unit_test(test_names_and_lifetime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
