/*
 * kernels/emu/ptx_emu.h — the emulated twins of the inline-PTX wrappers in
 * kernels/cuda/ptx.cuh (included from there when FT_CUDA_EMU is defined):
 *   cp.async.cg.shared.global 16 B, cp.async.commit_group, cp.async.wait_group N
 *   ldmatrix.sync.aligned.m8n8.{x4, x4.trans, x2.trans}.shared.b16
 *   mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32
 * Fragment layouts are those of the PTX ISA ("Matrix fragments for
 * mma.m16n8k16", "ldmatrix"); g = lane / 4, t = lane % 4:
 *   A (16 x 16, row):  a0 (g, 2t..2t+1)  a1 (g+8, 2t..)  a2 (g, 2t+8..)  a3 (g+8, 2t+8..)
 *   B (16 x 8, col):   b0 (k 2t..2t+1, n g)  b1 (k 2t+8.., n g)
 *   C/D (16 x 8):      c0, c1 (g, 2t..2t+1)  c2, c3 (g+8, 2t..)
 *   ldmatrix: lane l supplies the address of row l % 8 of matrix l / 8; lane l
 *   receives, of each matrix, elements (l / 4, 2 (l % 4) .. +1), or with
 *   .trans (2 (l % 4) .. +1, l / 4).
 * A copy issued by cp.async lands at the wait_group that retires its group:
 * until then its destination holds 0xFF bytes and reading it is reported.
 */
#ifndef FT_PTX_EMU_H
#define FT_PTX_EMU_H

static inline void cp_async16(void *smem, const void *gmem) { ::emu::cp_async(smem, gmem, 16); }
static inline void cp_async_commit() { ::emu::cp_async_commit(); }
template <int N> static inline void cp_async_wait() { ::emu::cp_async_wait(N); }

/* ---- ldmatrix ---- */
static inline void emu_ldmatrix_fn(::emu::WarpSlot *s, unsigned, int arg) {
    const int nmat = arg & 7, trans = arg >> 3;
    for (int m = 0; m < nmat; m++) {
        for (int r = 0; r < 8; r++) {
            const void *row = s[m * 8 + r].row;
            if ((uintptr_t)row & 15) {
                ::emu::kernel_fault(cudaErrorMisalignedAddress, "ldmatrix: row address %p of lane %d is not 16-byte aligned",
                                    row, m * 8 + r);
                return;
            }
            ::emu::shared_read(row, 16);
        }
        for (int l = 0; l < 32; l++) {
            uint16_t e[2];
            for (int k = 0; k < 2; k++) {
                int r = trans ? 2 * (l % 4) + k : l / 4, c = trans ? l / 4 : 2 * (l % 4) + k;
                memcpy(&e[k], (const char *)s[m * 8 + r].row + 2 * c, 2);
            }
            s[l].out[m] = (uint32_t)e[0] | ((uint32_t)e[1] << 16);
        }
    }
}
static inline void emu_ldmatrix(uint32_t *r, int nmat, int trans, const void *p, ::emu::Site site) {
    ::emu::my_slot()->row = p;
    ::emu::warp_collective(::emu::COLL_LDMATRIX, 0xffffffffu, emu_ldmatrix_fn, nmat | (trans << 3), site);
    for (int m = 0; m < nmat; m++) r[m] = (uint32_t)::emu::my_slot()->out[m];
}
/* Rows used by .x2: lanes 0..15 supply addresses; the others' are ignored. */
static inline void ldsm_x4(uint32_t (&r)[4], const void *p, ::emu::Site site = FT_EMU_SITE) {
    emu_ldmatrix(r, 4, 0, p, site);
}
static inline void ldsm_x4_t(uint32_t (&r)[4], const void *p, ::emu::Site site = FT_EMU_SITE) {
    emu_ldmatrix(r, 4, 1, p, site);
}
static inline void ldsm_x2_t(uint32_t (&r)[2], const void *p, ::emu::Site site = FT_EMU_SITE) {
    emu_ldmatrix(r, 2, 1, p, site);
}

/* ---- mma.sync m16n8k16, fp32 accumulate ---- */
inline float emu_bf16_bits_to_f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline float emu_f16_bits_to_f(uint16_t h) {
    __half_raw r;
    r.x = h;
    return __half2float(__half(r));
}
template <float (*CVT)(uint16_t)> static void emu_mma_fn(::emu::WarpSlot *s, unsigned, int) {
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; l++) {
        int g = l >> 2, t = l & 3;
        for (int q = 0; q < 4; q++) {
            int row = g + (q & 1) * 8, col = 2 * t + (q >> 1) * 8;
            A[row][col] = CVT((uint16_t)(s[l].a[q] & 0xffff));
            A[row][col + 1] = CVT((uint16_t)(s[l].a[q] >> 16));
        }
        for (int q = 0; q < 2; q++) {
            B[2 * t + q * 8][g] = CVT((uint16_t)(s[l].b[q] & 0xffff));
            B[2 * t + q * 8 + 1][g] = CVT((uint16_t)(s[l].b[q] >> 16));
        }
    }
    for (int l = 0; l < 32; l++) {
        int g = l >> 2, t = l & 3;
        for (int q = 0; q < 4; q++) {
            int row = g + (q >> 1) * 8, col = 2 * t + (q & 1);
            /* 16-bit products are exact in double; one rounding per MMA (the
             * tensor core's internal order and rounding are not modelled) */
            double acc = 0;
            for (int k = 0; k < 16; k++) acc += (double)A[row][k] * B[k][col];
            float d = (float)((double)s[l].c[q] + acc);
            uint32_t u;
            memcpy(&u, &d, 4);
            s[l].out[q] = u;
        }
    }
}
template <float (*CVT)(uint16_t)> struct emu_mma {
    static inline void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1,
                           ::emu::Site site = FT_EMU_SITE) {
        ::emu::WarpSlot *s = ::emu::my_slot();
        for (int q = 0; q < 4; q++) s->a[q] = a[q], s->c[q] = c[q];
        s->b[0] = b0, s->b[1] = b1;
        ::emu::warp_collective(::emu::COLL_MMA, 0xffffffffu, emu_mma_fn<CVT>, 0, site);
        for (int q = 0; q < 4; q++) {
            uint32_t u = (uint32_t)::emu::my_slot()->out[q];
            memcpy(&c[q], &u, 4);
        }
    }
};
template <typename T> struct mma_m16n8k16;
template <> struct mma_m16n8k16<__nv_bfloat16> : emu_mma<emu_bf16_bits_to_f> {};
template <> struct mma_m16n8k16<__half> : emu_mma<emu_f16_bits_to_f> {};

#endif /* FT_PTX_EMU_H */
