/*
 * module.c -- skipblocks._C: the module definition. Its functions are the
 * glue of csrc/glue/ (one file per operator family); this file merges their
 * method tables and sets up NumPy and the instruction set.
 */
#define SB_GLUE_MODULE_C
#include "glue.h"

static PyMethodDef methods[128];

static int add_methods(const PyMethodDef *family, size_t *count)
{
    for (; family->ml_name != NULL; family++) {
        if (*count + 1 >= sizeof methods / sizeof methods[0]) {
            PyErr_SetString(PyExc_SystemError, "skipblocks._C: method table too small");
            return -1;
        }
        methods[(*count)++] = *family;
    }
    return 0;
}

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "skipblocks._C",
    "The C operators of skipblocks (internal: use skipblocks and skipblocks.functional).\n\n"
    "Every function takes the layer name its errors start with first.",
    -1, methods};

PyMODINIT_FUNC PyInit__C(void)
{
    import_array();
    const PyMethodDef *families[] = {sb_glue_conv_methods,      sb_glue_batch_norm_methods,
                                     sb_glue_pool_methods,      sb_glue_elementwise_methods,
                                     sb_glue_linear_methods,    sb_glue_blocks_methods,
                                     sb_glue_runtime_methods,
                                     /* conv_transpose2d */
                                     sb_glue_conv_transpose_methods,
                                     /* pad and dropout */
                                     sb_glue_pad_dropout_methods,
                                     /* avg_pool2d and interpolate */
                                     sb_glue_avg_pool2d_methods, sb_glue_interpolate_methods,
                                     /* the channel-blocked layout */
                                     sb_glue_blocked_methods};
    size_t count = 0;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (add_methods(families[i], &count) < 0)
            return NULL;
    methods[count] = (PyMethodDef){NULL, NULL, 0, NULL};
    /* Choose the instruction set now, while one thread runs: later calls
     * only read the choice (or sb_set_isa changes it, from Python). */
    (void)sb_get_isa();
    return PyModule_Create(&module_def);
}
