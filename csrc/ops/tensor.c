/*
 * tensor.c -- sb_tensor helpers and the error-detail setters every operator
 * uses (see ops_internal.h).
 */
#include "ops_internal.h"

size_t sb_dtype_size(sb_dtype dtype)
{
    switch (dtype) {
    case SB_DTYPE_F32:
        return sizeof(float);
    case SB_DTYPE_F64:
        return sizeof(double);
    }
    return 0;
}

int64_t sb_tensor_numel(const sb_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->dims[i];
    return n;
}

sb_status sb_fail(sb_error *err, sb_status status, sb_error_code code)
{
    memset(err, 0, sizeof *err);
    err->code = code;
    return status;
}

sb_status sb_fail_v(sb_error *err, sb_status status, sb_error_code code, int count,
                    int64_t v0, int64_t v1, int64_t v2, int64_t v3)
{
    const int64_t values[4] = {v0, v1, v2, v3};
    sb_fail(err, status, code);
    sb_err_values(err, count, values);
    return status;
}

sb_error *sb_err_values(sb_error *err, int count, const int64_t *values)
{
    for (int i = 0; i < count && i < SB_ERROR_VALUES; i++)
        err->value[i] = values[i];
    return err;
}

sb_error *sb_err_shape(sb_error *err, int slot, const sb_tensor *t)
{
    err->ndim[slot] = t->ndim;
    for (int i = 0; i < t->ndim; i++)
        err->dims[slot][i] = t->dims[i];
    return err;
}

sb_error *sb_err_arg(sb_error *err, const char *arg)
{
    err->arg = arg;
    return err;
}

sb_fmap sb_fmap_of(const sb_tensor *t)
{
    sb_fmap m;
    if (t->ndim == 3) {
        m.n = 1;
        m.c = t->dims[0];
        m.h = t->dims[1];
        m.w = t->dims[2];
        m.batch_stride = m.c * m.h * m.w;
    } else {
        m.n = t->dims[0];
        m.c = t->dims[1];
        m.h = t->dims[2];
        m.w = t->dims[3];
        m.batch_stride = t->batch_stride;
    }
    return m;
}

int64_t sb_block_lanes(sb_dtype dt)
{
    return dt == SB_DTYPE_F64 ? SB_CONV_NR_F64 : SB_CONV_NR_F32;
}

sb_status sb_blocked_view(sb_tensor *view, const sb_tensor *t, int64_t channels,
                          const char *arg, sb_error *err)
{
    const int64_t b = sb_block_lanes(t->dtype);
    if (channels < 0 || channels > SB_BLOCKED_CHANNELS_MAX) {
        sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_BLOCKED_CHANNELS, 2, channels,
                  SB_BLOCKED_CHANNELS_MAX, 0, 0);
        sb_err_arg(err, arg);
        return SB_ERR_ARGUMENT;
    }
    const int64_t blocks = (channels + b - 1) / b;
    if (t->ndim != 5 || t->dims[1] != blocks || t->dims[4] != b) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONV_BLOCKED, 2, blocks, b, 0, 0);
        sb_err_shape(err, 0, t);
        sb_err_arg(err, arg);
        return SB_ERR_SHAPE;
    }
    /* the images may lie further apart (a slice of a larger blocked map),
     * never closer */
    const int64_t image = sb_sat_mul(sb_sat_mul(blocks, b), sb_sat_mul(t->dims[2], t->dims[3]));
    if (t->dims[0] > 1 && t->batch_stride < image) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONV_BLOCKED, 2, blocks, b, 0, 0);
        sb_err_shape(err, 0, t);
        sb_err_arg(err, arg);
        return SB_ERR_SHAPE;
    }
    *view = *t;
    view->ndim = 4;
    view->dims[1] = channels;
    view->dims[4] = 0;
    view->batch_stride = t->dims[0] > 1 ? t->batch_stride : image;
    return SB_OK;
}

int64_t sb_blocked_dims(int64_t dims[5], const sb_fmap *m, sb_dtype dt)
{
    const int64_t b = sb_block_lanes(dt);
    dims[0] = m->n;
    dims[1] = (m->c + b - 1) / b;
    dims[2] = m->h;
    dims[3] = m->w;
    dims[4] = b;
    return sb_sat_mul(sb_sat_mul(dims[1], b), sb_sat_mul(m->h, m->w));
}

int sb_same_dims(const sb_tensor *t, int ndim, const int64_t *dims)
{
    if (t->ndim != ndim)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (t->dims[i] != dims[i])
            return 0;
    return 1;
}

int sb_check_dtype(sb_error *err, const sb_tensor *t)
{
    if (t == NULL || t->dtype == SB_DTYPE_F32 || t->dtype == SB_DTYPE_F64)
        return 1;
    sb_fail(err, SB_ERR_ARGUMENT, SB_E_DTYPE);
    return 0;
}

sb_status sb_fail_dtype(sb_error *err, sb_error_code code, const char *arg, sb_dtype want,
                        sb_dtype got)
{
    sb_fail_v(err, SB_ERR_ARGUMENT, code, 2, (int64_t)want, (int64_t)got, 0, 0);
    sb_err_arg(err, arg);
    return SB_ERR_ARGUMENT;
}

sb_status sb_check_same_dtype(sb_error *err, const sb_tensor *t, sb_dtype dtype,
                              const char *arg)
{
    if (sb_dtype_is(t, dtype))
        return SB_OK;
    return sb_fail_dtype(err, SB_E_DTYPE_MISMATCH, arg, dtype, t->dtype);
}

int64_t sb_sat_mul(int64_t a, int64_t b)
{
    if (a <= 0 || b <= 0)
        return 0;
    return a > INT64_MAX / b ? INT64_MAX : a * b;
}

int64_t sb_sat_numel(int ndim, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n = sb_sat_mul(n, dims[i]);
    return n;
}

size_t sb_layout_add(sb_layout *layout, uint64_t bytes)
{
    const size_t offset = layout->total;
    if (offset > SIZE_MAX - 2 * SB_OP_ALIGN || bytes > SIZE_MAX - 2 * SB_OP_ALIGN - offset) {
        layout->total = SIZE_MAX;
        return 0;
    }
    const size_t end = offset + (size_t)bytes;
    layout->total = (end + SB_OP_ALIGN - 1) / SB_OP_ALIGN * SB_OP_ALIGN;
    return offset;
}

uint64_t sb_elem_bytes(sb_dtype dtype, int64_t count)
{
    const uint64_t size = sb_dtype_size(dtype);
    if (count <= 0)
        return 0;
    if (count == INT64_MAX || size == 0 || (uint64_t)count > UINT64_MAX / size)
        return UINT64_MAX;
    return (uint64_t)count * size;
}

sb_tensor sb_tensor_4d(void *data, const int64_t dims[4], sb_dtype dtype)
{
    sb_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.ndim = 4;
    for (int i = 0; i < 4; i++)
        t.dims[i] = dims[i];
    t.batch_stride = dims[1] * dims[2] * dims[3];
    return t;
}

sb_tensor sb_tensor_1d(void *data, int64_t count, sb_dtype dtype)
{
    sb_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.ndim = 1;
    t.dims[0] = count;
    t.batch_stride = 1;
    return t;
}
