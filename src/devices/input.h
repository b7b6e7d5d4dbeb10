/*
 * --device virtio-input's options: kept by its descriptor (input.c) on
 * dev_config.priv, not in core/config.h's union, as a new kind does.
 */
#ifndef KRUNKIT_DEVICES_INPUT_H
#define KRUNKIT_DEVICES_INPUT_H

#include "core/config.h"

enum input_kind { INPUT_KEYBOARD, INPUT_POINTING };

struct dev_input {
    enum input_kind kind;
};

static inline const struct dev_input *dev_input_of(const struct dev_config *d)
{
    return d->priv;
}

#endif
