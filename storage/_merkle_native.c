/* The audit tree's hot loops in C: RFC 6962 / RFC 9162 node hashes of a level, the roots of perfect subtrees
 * from their leaf hashes, and the leaf hashes of a batch of leaves, each in one call.
 *
 * Why: from Python every SHA-256 pays OpenSSL's per-call set-up (hashlib.sha256 of 65 bytes costs 0.34-0.45 us
 * on this machine, the compression itself ~0.1 us), and the block roots of a bulk append are 63 such hashes
 * every 64 events: most of the tree's share of an append. Here one SHA256_CTX on the stack is reused for every
 * hash of a call. The results are byte for byte those of storage/tree_hashes.py's Python functions (the
 * fallback when this module is not built), which the tests check; the length rules are the same too.
 *
 * The low-level SHA256_Init/Update/Final are deprecated in OpenSSL 3 but measured faster here than EVP with one
 * reused EVP_MD_CTX and a pre-fetched EVP_MD (see bench/HISTORY.md, audit8); they are silenced for this file
 * only. The GIL is held throughout: the inputs are immutable bytes and a call is at most milliseconds.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>
#include <string.h>

#define HASH_SIZE 32

static void hash_prefixed(unsigned char prefix, const unsigned char *data, size_t len, unsigned char *out) {
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, &prefix, 1);
    SHA256_Update(&ctx, data, len);
    SHA256_Final(out, &ctx);
}

/* Hash pairs of `count` joined hashes at `in` (count even) into count/2 hashes at `out` (may equal `in`). */
static void hash_pairs(const unsigned char *in, Py_ssize_t count, unsigned char *out) {
    unsigned char buf[1 + 2 * HASH_SIZE];
    buf[0] = 0x01;
    for (Py_ssize_t i = 0; i < count / 2; i++) {
        SHA256_CTX ctx;
        memcpy(buf + 1, in + (size_t)i * 2 * HASH_SIZE, 2 * HASH_SIZE);
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, buf, sizeof buf);
        SHA256_Final(out + (size_t)i * HASH_SIZE, &ctx);
    }
}

static int whole_hashes(Py_buffer *view, const char *name) {
    if (view->len % HASH_SIZE != 0) {
        PyErr_Format(PyExc_ValueError, "%s must join whole %d-byte hashes, got %zd bytes", name, HASH_SIZE,
                     view->len);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(parents_doc, "parents(level, first, end, /)\n--\n\n"
                          "The node hashes of nodes first .. end-1 of one tree level, paired in order and joined.");

static PyObject *parents(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer level;
    Py_ssize_t first, end;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "parents() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    /* clamped, not refused: a count beyond any level is then refused below as beyond this one */
    first = PyNumber_AsSsize_t(args[1], NULL);
    if (first == -1 && PyErr_Occurred()) return NULL;
    end = PyNumber_AsSsize_t(args[2], NULL);
    if (end == -1 && PyErr_Occurred()) return NULL;
    if (PyObject_GetBuffer(args[0], &level, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *result = NULL;
    if (whole_hashes(&level, "level") < 0) goto done;
    Py_ssize_t nodes = level.len / HASH_SIZE;
    if (first < 0 || end < first || end > nodes) {
        PyErr_Format(PyExc_ValueError, "nodes %zd .. %zd are not within a level of %zd", first, end, nodes);
        goto done;
    }
    Py_ssize_t count = (end - first) - (end - first) % 2;
    result = PyBytes_FromStringAndSize(NULL, count / 2 * HASH_SIZE);
    if (result == NULL) goto done;
    hash_pairs((const unsigned char *)level.buf + (size_t)first * HASH_SIZE, count,
               (unsigned char *)PyBytes_AS_STRING(result));
done:
    PyBuffer_Release(&level);
    return result;
}

PyDoc_STRVAR(subtree_roots_doc,
             "subtree_roots(data, levels, /)\n--\n\n"
             "The roots of the consecutive perfect subtrees of 2**levels hashes each that data joins, joined.");

static PyObject *subtree_roots(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer data;
    Py_ssize_t levels;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "subtree_roots() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    levels = PyNumber_AsSsize_t(args[1], NULL);
    if (levels == -1 && PyErr_Occurred()) return NULL;
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *result = NULL;
    if (whole_hashes(&data, "data") < 0) goto done;
    if (levels < 0) {
        PyErr_Format(PyExc_ValueError, "levels must not be negative, got %zd", levels);
        goto done;
    }
    Py_ssize_t count = data.len / HASH_SIZE;
    if (levels == 0) {
        result = PyBytes_FromStringAndSize(data.buf, data.len);
        goto done;
    }
    Py_ssize_t roots = levels >= (Py_ssize_t)(8 * sizeof(Py_ssize_t) - 1) ? 0 : count >> levels;
    result = PyBytes_FromStringAndSize(NULL, roots * HASH_SIZE);
    if (result == NULL || roots == 0) goto done;
    /* subtree by subtree, each within a small stack buffer: the whole level never needs a second copy */
    Py_ssize_t width = (Py_ssize_t)1 << levels;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    unsigned char stackbuf[64 * HASH_SIZE];
    unsigned char *scratch = width / 2 <= 64 ? stackbuf : PyMem_Malloc((size_t)(width / 2) * HASH_SIZE);
    if (scratch == NULL) {
        Py_CLEAR(result);
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t r = 0; r < roots; r++) {
        const unsigned char *leaves = (const unsigned char *)data.buf + (size_t)(r * width) * HASH_SIZE;
        Py_ssize_t n = width;
        hash_pairs(leaves, n, scratch);
        for (n /= 2; n > 1; n /= 2) hash_pairs(scratch, n, scratch);
        memcpy(out + (size_t)r * HASH_SIZE, scratch, HASH_SIZE);
    }
    if (scratch != stackbuf) PyMem_Free(scratch);
done:
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(leaf_hashes_doc, "leaf_hashes(leaves, /)\n--\n\n"
                              "The RFC 6962 leaf hashes (SHA-256 of 0x00 and the leaf) of a list of leaves, joined.");

static PyObject *leaf_hashes(PyObject *Py_UNUSED(module), PyObject *leaves) {
    if (!PyList_Check(leaves) && !PyTuple_Check(leaves)) {
        PyErr_SetString(PyExc_TypeError, "leaves must be a list or tuple of bytes");
        return NULL;
    }
    /* a list is copied to a tuple (pointers only): nothing a buffer export runs can resize it under the loop */
    PyObject *seq = PyList_Check(leaves) ? PyList_AsTuple(leaves) : Py_NewRef(leaves);
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *result = PyBytes_FromStringAndSize(NULL, n * HASH_SIZE);
    if (result == NULL) goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyBytes_Check(items[i])) { /* the usual case: no buffer to acquire */
            hash_prefixed(0x00, (const unsigned char *)PyBytes_AS_STRING(items[i]), PyBytes_GET_SIZE(items[i]),
                          out + (size_t)i * HASH_SIZE);
            continue;
        }
        Py_buffer view;
        if (PyObject_GetBuffer(items[i], &view, PyBUF_SIMPLE) < 0) {
            Py_CLEAR(result);
            goto done;
        }
        hash_prefixed(0x00, view.buf, view.len, out + (size_t)i * HASH_SIZE);
        PyBuffer_Release(&view);
    }
done:
    Py_DECREF(seq);
    return result;
}

static PyMethodDef methods[] = {
    {"parents", (PyCFunction)(void (*)(void))parents, METH_FASTCALL, parents_doc},
    {"subtree_roots", (PyCFunction)(void (*)(void))subtree_roots, METH_FASTCALL, subtree_roots_doc},
    {"leaf_hashes", leaf_hashes, METH_O, leaf_hashes_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "storage._merkle_native",
    "The audit tree's SHA-256 loops in C (storage.tree_hashes picks them when built).",
    0, methods, slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__merkle_native(void) { return PyModuleDef_Init(&module_def); }
