/*
 * The --device kinds, one line each: DEVICE(ID, sym) makes enum dev_type's
 * DEV_<ID> (core/config.h) and the table entry &dev_kind_<sym>
 * (src/devices/table.c), which the kind's file defines (core/devkind.h).
 * Adding a device is its file plus its line here. The order is the one the
 * parser's "unknown device type" message lists.
 *
 * No include guard: each user defines DEVICE, includes this, undefines it.
 */
DEVICE(BLK, blk)
DEVICE(NET, net)
DEVICE(SERIAL, serial)
DEVICE(VSOCK, vsock)
DEVICE(FS, fs)
DEVICE(RNG, rng)
DEVICE(BALLOON, balloon)
DEVICE(GPU, gpu)
DEVICE(INPUT, input)
