;; int8 × int7 matrix products with relaxed SIMD's i32x4.relaxed_dot_i8x16_i7x16_add_s: 16
;; multiply-adds and the accumulation in one instruction, against four for i32x4.dot_i16x8_s. A
;; separate module because Debian's clang 14 cannot emit it; the C kernels (matmul.c) import these
;; when the runtime validates this module (workerd, Deno, Node with --experimental-wasm-relaxed-simd).
;;
;; Two forms of each function that uses the instruction. V8 lowers it to one vpdpbusd on x64 with
;; AVX-VNNI, but without AVX-VNNI (AMD before Zen 5, Intel before Alder Lake / Sapphire Rapids) to
;; pmaddubsw, pmaddwd against a vector of ones that it rebuilds at every use (2 more instructions),
;; and paddd: five. So build-relaxed.mjs writes each such function (and each that calls one) twice:
;; as below ("fused"), and as <name>_split, with the ones in a register, and where a function's sums fit 16 bits (it marks
;; the points where they are read as (block_sum X), X in the fused form) adding products as int16
;; and widening once per block: two instructions per 16 multiply-adds. Both give the same integers.
;; relaxed.ts times the two forms of gemm and gemm_q4b once per module and imports the faster one.
;; One function per weight kind of simd.h: gemm (Q7_ROW), gemm_s8 (Q8_ROW), gemm_q8b (Q8_B32),
;; gemm_q4b (Q4_B32). Each loops a few weight rows (4, or 16 for gemm_q8b's passes over more than
;; one activation row; in L1) against every activation row, then the next ones.
;; At the end, the attention loops (attention.c imports them too): scores and values over the f32
;; KV cache, with f32x4.relaxed_madd, and scores_i8 and values_i8 over the int8 one.
;;
;; gemm (Q7_ROW): y[r][o] = (Σ_k a[r][k] · w[o][k] − 64 · asum[r]) · ws[o] · as[r]
;;   a: activations, int8 [rows][n] (scale as[r], lane sum asum[r]); w: weights stored as w + 64
;;   (0..127, the instruction's unsigned 7-bit operand) [n_out][n], scale ws[o]; y: f32 with row
;;   stride ldy floats. Needs n % 16 == 0 and n_out % 4 == 0. The products of one lane pair stay
;;   below 2 · 127 · 127 < 2^15, so the instruction's 16-bit intermediate never saturates.
(module
  (import "env" "memory" (memory 1))
;; Each pass takes 4 weight rows against 2 activation rows (8 accumulators; 14 of the 16 vector
;; registers V8 allocates on x64), so each loaded weight vector serves two dot products and each
;; activation vector four; an odd last activation row runs alone.
  (func (export "gemm")
    (param $y i32) (param $ldy i32) (param $a i32) (param $as i32) (param $asum i32) (param $rows i32)
    (param $w i32) (param $ws i32) (param $nout i32) (param $n i32)
    (local $o i32) (local $r i32) (local $k i32) (local $ar i32) (local $ar1 i32)
    (local $w0 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $d3 v128) (local $x v128) (local $x1 v128) (local $v v128)
    (loop $outputs
      (local.set $w0 (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $n))))
      (local.set $w1 (i32.add (local.get $w0) (local.get $n)))
      (local.set $w2 (i32.add (local.get $w1) (local.get $n)))
      (local.set $w3 (i32.add (local.get $w2) (local.get $n)))
      (local.set $r (i32.const 0))
      (block $pairs_done
        (loop $pairs
          (br_if $pairs_done (i32.ge_u (i32.add (local.get $r) (i32.const 1)) (local.get $rows)))
          (local.set $ar (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $n))))
          (local.set $ar1 (i32.add (local.get $ar) (local.get $n)))
          (local.set $c0 (v128.const i32x4 0 0 0 0))
          (local.set $c1 (v128.const i32x4 0 0 0 0))
          (local.set $c2 (v128.const i32x4 0 0 0 0))
          (local.set $c3 (v128.const i32x4 0 0 0 0))
          (local.set $d0 (v128.const i32x4 0 0 0 0))
          (local.set $d1 (v128.const i32x4 0 0 0 0))
          (local.set $d2 (v128.const i32x4 0 0 0 0))
          (local.set $d3 (v128.const i32x4 0 0 0 0))
          (local.set $k (i32.const 0))
          (loop $inner2
            (local.set $x (v128.load (i32.add (local.get $ar) (local.get $k))))
            (local.set $x1 (v128.load (i32.add (local.get $ar1) (local.get $k))))
            (local.set $v (v128.load (i32.add (local.get $w0) (local.get $k))))
            (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $v) (local.get $c0)))
            (local.set $d0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $v) (local.get $d0)))
            (local.set $v (v128.load (i32.add (local.get $w1) (local.get $k))))
            (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $v) (local.get $c1)))
            (local.set $d1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $v) (local.get $d1)))
            (local.set $v (v128.load (i32.add (local.get $w2) (local.get $k))))
            (local.set $c2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $v) (local.get $c2)))
            (local.set $d2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $v) (local.get $d2)))
            (local.set $v (v128.load (i32.add (local.get $w3) (local.get $k))))
            (local.set $c3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $v) (local.get $c3)))
            (local.set $d3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $v) (local.get $d3)))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br_if $inner2 (i32.lt_u (local.get $k) (local.get $n))))
          (call $store_q7 (local.get $y) (local.get $ldy) (local.get $as) (local.get $asum) (local.get $ws) (local.get $r) (local.get $o)
            (local.get $c0) (local.get $c1) (local.get $c2) (local.get $c3))
          (call $store_q7 (local.get $y) (local.get $ldy) (local.get $as) (local.get $asum) (local.get $ws) (i32.add (local.get $r) (i32.const 1)) (local.get $o)
            (local.get $d0) (local.get $d1) (local.get $d2) (local.get $d3))
          (local.set $r (i32.add (local.get $r) (i32.const 2)))
          (br $pairs)))
      ;; An odd last activation row (decode: the only one) alone, the 4 weight rows one after
      ;; another (row_q7): in memory order, which streams from memory 1.3–1.9× faster than the 4 rows
      ;; side by side (BENCHMARKS.md).
      (if (i32.lt_u (local.get $r) (local.get $rows))
        (then
          (local.set $ar (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $n))))
          (call $store_q7 (local.get $y) (local.get $ldy) (local.get $as) (local.get $asum) (local.get $ws) (local.get $r) (local.get $o)
            (call $row_q7 (local.get $ar) (local.get $w0) (local.get $n)) (call $row_q7 (local.get $ar) (local.get $w1) (local.get $n))
            (call $row_q7 (local.get $ar) (local.get $w2) (local.get $n)) (call $row_q7 (local.get $ar) (local.get $w3) (local.get $n)))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br_if $outputs (i32.lt_u (local.get $o) (local.get $nout)))))

  ;; One weight row against one activation row: Σ_k dot(x[k..k+15], w[k..k+15]) as 4 lane sums, in
  ;; four chains (k, k + 16, k + 32, k + 48), so that four dot products are in flight; n % 16 == 0.
  (func $row_q7 (param $x i32) (param $w i32) (param $n i32) (result v128)
    (local $k i32) (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (block $fours_done
      (loop $fours
        (br_if $fours_done (i32.gt_u (i32.add (local.get $k) (i32.const 64)) (local.get $n)))
        (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (v128.load (i32.add (local.get $x) (local.get $k))) (v128.load (i32.add (local.get $w) (local.get $k))) (local.get $c0)))
        (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (v128.load offset=16 (i32.add (local.get $x) (local.get $k))) (v128.load offset=16 (i32.add (local.get $w) (local.get $k))) (local.get $c1)))
        (local.set $c2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (v128.load offset=32 (i32.add (local.get $x) (local.get $k))) (v128.load offset=32 (i32.add (local.get $w) (local.get $k))) (local.get $c2)))
        (local.set $c3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (v128.load offset=48 (i32.add (local.get $x) (local.get $k))) (v128.load offset=48 (i32.add (local.get $w) (local.get $k))) (local.get $c3)))
        (local.set $k (i32.add (local.get $k) (i32.const 64)))
        (br $fours)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (v128.load (i32.add (local.get $x) (local.get $k))) (v128.load (i32.add (local.get $w) (local.get $k))) (local.get $c0)))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $tail)))
    (i32x4.add (i32x4.add (local.get $c0) (local.get $c1)) (i32x4.add (local.get $c2) (local.get $c3))))

  ;; y[r][o..o+3] = ([Σc0, Σc1, Σc2, Σc3] − 64 · asum[r]) · ws[o..o+3] · as[r]: four rows' lane sums as one vector.
  (func $store_q7
    (param $y i32) (param $ldy i32) (param $as i32) (param $asum i32) (param $ws i32) (param $r i32) (param $o i32)
    (param $c0 v128) (param $c1 v128) (param $c2 v128) (param $c3 v128)
    (local $ab v128) (local $cd v128)
    (local.set $ab (i32x4.add
      (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $c0) (local.get $c1))
      (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $c0) (local.get $c1))))
    (local.set $cd (i32x4.add
      (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $c2) (local.get $c3))
      (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $c2) (local.get $c3))))
    (v128.store
      (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $ldy)) (local.get $o)) (i32.const 2)))
      (f32x4.mul
        (f32x4.mul
          (f32x4.convert_i32x4_s
            (i32x4.sub
              (i32x4.add
                (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $ab) (local.get $cd))
                (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $ab) (local.get $cd)))
              (i32x4.splat (i32.shl (i32.load (i32.add (local.get $asum) (i32.shl (local.get $r) (i32.const 2)))) (i32.const 6)))))
          (v128.load (i32.add (local.get $ws) (i32.shl (local.get $o) (i32.const 2)))))
        (f32x4.splat (f32.load (i32.add (local.get $as) (i32.shl (local.get $r) (i32.const 2))))))))

  ;; gemm_s8's row_q7: one weight row against |a| (x) with a's signs (sg) moved onto the weights.
  (func $row_s8 (param $x i32) (param $sg i32) (param $w i32) (param $n i32) (result v128)
    (local $k i32) (local $s v128) (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (block $fours_done
      (loop $fours
        (br_if $fours_done (i32.gt_u (i32.add (local.get $k) (i32.const 64)) (local.get $n)))
        (local.set $s (v128.load (i32.add (local.get $sg) (local.get $k))))
        (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load (i32.add (local.get $w) (local.get $k))) (local.get $s)) (local.get $s)) (v128.load (i32.add (local.get $x) (local.get $k))) (local.get $c0)))
        (local.set $s (v128.load offset=16 (i32.add (local.get $sg) (local.get $k))))
        (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load offset=16 (i32.add (local.get $w) (local.get $k))) (local.get $s)) (local.get $s)) (v128.load offset=16 (i32.add (local.get $x) (local.get $k))) (local.get $c1)))
        (local.set $s (v128.load offset=32 (i32.add (local.get $sg) (local.get $k))))
        (local.set $c2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load offset=32 (i32.add (local.get $w) (local.get $k))) (local.get $s)) (local.get $s)) (v128.load offset=32 (i32.add (local.get $x) (local.get $k))) (local.get $c2)))
        (local.set $s (v128.load offset=48 (i32.add (local.get $sg) (local.get $k))))
        (local.set $c3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load offset=48 (i32.add (local.get $w) (local.get $k))) (local.get $s)) (local.get $s)) (v128.load offset=48 (i32.add (local.get $x) (local.get $k))) (local.get $c3)))
        (local.set $k (i32.add (local.get $k) (i32.const 64)))
        (br $fours)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $s (v128.load (i32.add (local.get $sg) (local.get $k))))
        (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load (i32.add (local.get $w) (local.get $k))) (local.get $s)) (local.get $s)) (v128.load (i32.add (local.get $x) (local.get $k))) (local.get $c0)))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $tail)))
    (i32x4.add (i32x4.add (local.get $c0) (local.get $c1)) (i32x4.add (local.get $c2) (local.get $c3))))

  ;; Full 8-bit signed weights (Q8_ROW), one scale per row. The instruction's unsigned 7-bit operand is
  ;; the activation's magnitude |a| (≤ 127), and the weight takes the activation's sign (s: 0 or −1
  ;; per lane, (w ^ s) − s; weights are ±127, so the negation never overflows):
  ;; y[r][o] = (Σ_k sign(a)·w · |a|) · ws[o] · as[r]. Pair sums stay below 2 · 127 · 127 < 2^15.
  (func (export "gemm_s8")
    (param $y i32) (param $ldy i32) (param $a i32) (param $sg i32) (param $as i32) (param $rows i32)
    (param $w i32) (param $ws i32) (param $nout i32) (param $n i32)
    (local $o i32) (local $r i32) (local $k i32) (local $ar i32) (local $sr i32)
    (local $w0 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128) (local $x v128) (local $s v128) (local $ab v128) (local $cd v128)
    (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $d3 v128) (local $x1 v128) (local $s1 v128)
    (loop $outputs
      (local.set $w0 (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $n))))
      (local.set $w1 (i32.add (local.get $w0) (local.get $n)))
      (local.set $w2 (i32.add (local.get $w1) (local.get $n)))
      (local.set $w3 (i32.add (local.get $w2) (local.get $n)))
      (local.set $r (i32.const 0))
      (loop $activation_rows
        (local.set $ar (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $n))))
        (local.set $sr (i32.add (local.get $sg) (i32.mul (local.get $r) (local.get $n))))
        ;; One activation row (decode): the 4 weight rows one after another (row_s8), in memory order
        ;; (gemm's single row says why). More rows: the 4 side by side, each activation vector loaded
        ;; once for the four (the 4 rows' weights stay in L1 while every activation row passes); with
        ;; row_s8 here too, a 128-token prefill of the SmolLM2-135M shape took 578–600 ms against
        ;; 474–531 (one pair of runs; later pairs on this noisy machine were inconclusive).
        (if (i32.eq (local.get $rows) (i32.const 1))
          (then
            (local.set $c0 (call $row_s8 (local.get $ar) (local.get $sr) (local.get $w0) (local.get $n)))
            (local.set $c1 (call $row_s8 (local.get $ar) (local.get $sr) (local.get $w1) (local.get $n)))
            (local.set $c2 (call $row_s8 (local.get $ar) (local.get $sr) (local.get $w2) (local.get $n)))
            (local.set $c3 (call $row_s8 (local.get $ar) (local.get $sr) (local.get $w3) (local.get $n))))
          (else
            (local.set $c0 (v128.const i32x4 0 0 0 0))
            (local.set $c1 (v128.const i32x4 0 0 0 0))
            (local.set $c2 (v128.const i32x4 0 0 0 0))
            (local.set $c3 (v128.const i32x4 0 0 0 0))
            (local.set $d0 (v128.const i32x4 0 0 0 0))
            (local.set $d1 (v128.const i32x4 0 0 0 0))
            (local.set $d2 (v128.const i32x4 0 0 0 0))
            (local.set $d3 (v128.const i32x4 0 0 0 0))
            (local.set $k (i32.const 0))
            ;; two sets of accumulators (k and k + 16), eight dot products in flight (as gemm's single row)
            (block $pairs_of_vectors_done
              (loop $inner
                (br_if $pairs_of_vectors_done (i32.gt_u (i32.add (local.get $k) (i32.const 32)) (local.get $n)))
                (local.set $x (v128.load (i32.add (local.get $ar) (local.get $k))))
                (local.set $s (v128.load (i32.add (local.get $sr) (local.get $k))))
                (local.set $x1 (v128.load offset=16 (i32.add (local.get $ar) (local.get $k))))
                (local.set $s1 (v128.load offset=16 (i32.add (local.get $sr) (local.get $k))))
                (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load (i32.add (local.get $w0) (local.get $k))) (local.get $s)) (local.get $s)) (local.get $x) (local.get $c0)))
                (local.set $d0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load offset=16 (i32.add (local.get $w0) (local.get $k))) (local.get $s1)) (local.get $s1)) (local.get $x1) (local.get $d0)))
                (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load (i32.add (local.get $w1) (local.get $k))) (local.get $s)) (local.get $s)) (local.get $x) (local.get $c1)))
                (local.set $d1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load offset=16 (i32.add (local.get $w1) (local.get $k))) (local.get $s1)) (local.get $s1)) (local.get $x1) (local.get $d1)))
                (local.set $c2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load (i32.add (local.get $w2) (local.get $k))) (local.get $s)) (local.get $s)) (local.get $x) (local.get $c2)))
                (local.set $d2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load offset=16 (i32.add (local.get $w2) (local.get $k))) (local.get $s1)) (local.get $s1)) (local.get $x1) (local.get $d2)))
                (local.set $c3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load (i32.add (local.get $w3) (local.get $k))) (local.get $s)) (local.get $s)) (local.get $x) (local.get $c3)))
                (local.set $d3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load offset=16 (i32.add (local.get $w3) (local.get $k))) (local.get $s1)) (local.get $s1)) (local.get $x1) (local.get $d3)))
                (local.set $k (i32.add (local.get $k) (i32.const 32)))
                (br $inner)))
            (if (i32.lt_u (local.get $k) (local.get $n))
              (then
                (local.set $x (v128.load (i32.add (local.get $ar) (local.get $k))))
                (local.set $s (v128.load (i32.add (local.get $sr) (local.get $k))))
                  (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load (i32.add (local.get $w0) (local.get $k))) (local.get $s)) (local.get $s)) (local.get $x) (local.get $c0)))
                  (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load (i32.add (local.get $w1) (local.get $k))) (local.get $s)) (local.get $s)) (local.get $x) (local.get $c1)))
                  (local.set $c2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load (i32.add (local.get $w2) (local.get $k))) (local.get $s)) (local.get $s)) (local.get $x) (local.get $c2)))
                  (local.set $c3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (v128.load (i32.add (local.get $w3) (local.get $k))) (local.get $s)) (local.get $s)) (local.get $x) (local.get $c3)))))
            (local.set $c0 (i32x4.add (local.get $c0) (local.get $d0)))
            (local.set $c1 (i32x4.add (local.get $c1) (local.get $d1)))
            (local.set $c2 (i32x4.add (local.get $c2) (local.get $d2)))
            (local.set $c3 (i32x4.add (local.get $c3) (local.get $d3)))))
        (v128.store
          (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $ldy)) (local.get $o)) (i32.const 2)))
          (f32x4.mul
            (f32x4.mul
              (f32x4.convert_i32x4_s (i32x4.add
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
                (local.tee $ab (i32x4.add
                  (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $c0) (local.get $c1))
                  (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $c0) (local.get $c1))))
                (local.tee $cd (i32x4.add
                  (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $c2) (local.get $c3))
                  (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $c2) (local.get $c3)))))
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $ab) (local.get $cd))))
              (v128.load (i32.add (local.get $ws) (i32.shl (local.get $o) (i32.const 2)))))
            (f32x4.splat (f32.load (i32.add (local.get $as) (i32.shl (local.get $r) (i32.const 2)))))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br_if $activation_rows (i32.lt_u (local.get $r) (local.get $rows))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br_if $outputs (i32.lt_u (local.get $o) (local.get $nout)))))

  ;; 8-bit signed weights in 32-value blocks with one scale each (Q8_B32, GGUF Q8_0), a group of 4
  ;; rows interleaving its blocks by 4 bytes as Q4_B32 (simd.h): the 16 bytes at 16m of a group's
  ;; 128-byte block hold values 4m..4m+3 of rows 0, 1, 2, 3, so against the activations 4m..4m+3
  ;; repeated in every lane (a shuffle) one dot product adds 4 products to each row's lane. The
  ;; activation's sign is moved onto the weight as in gemm_s8 ((w ^ s) − s, s repeated alike), and
  ;; |a| is the unsigned 7-bit operand. acc += f32(Σ_block) · ws[o..o+3][b]; no sums to transpose.
  ;; With two or more activation rows, each row passes over 4 groups (16 outputs) at a time, one
  ;; chain of dot products per group (the sign depends on the activation, so a weight vector serves
  ;; one row: no row tiles); one row (decode), and the groups left over, run a group at a time, with
  ;; two chains.
  (func (export "gemm_q8b")
    (param $y i32) (param $ldy i32) (param $a i32) (param $sg i32) (param $as i32) (param $rows i32)
    (param $w i32) (param $ws i32) (param $nout i32) (param $n i32)
    (local $o i32) (local $r i32) (local $wg i32) (local $wsg i32) (local $yr i32)
    (local $pa i32) (local $psg i32) (local $pw i32) (local $ps i32) (local $end i32)
    (local $g1 i32) (local $s1 i32) (local $g2 i32) (local $s2 i32) (local $g3 i32) (local $s3 i32)
    (local $x0 v128) (local $x1 v128) (local $m0 v128) (local $m1 v128) (local $xa v128) (local $xs v128) (local $v v128) (local $sc v128)
    (local $q0 v128) (local $q1 v128) (local $q2 v128) (local $q3 v128) (local $f0 v128) (local $f1 v128) (local $f2 v128) (local $f3 v128)
    (local.set $g1 (i32.shl (local.get $n) (i32.const 2)))  ;; group 1's weights: 4n bytes after group 0's
    (local.set $g2 (i32.shl (local.get $n) (i32.const 3)))
    (local.set $g3 (i32.add (local.get $g1) (local.get $g2)))
    (local.set $s1 (i32.shr_u (local.get $n) (i32.const 1)))  ;; its scales: n / 2 bytes after group 0's
    (local.set $s2 (local.get $n))
    (local.set $s3 (i32.add (local.get $n) (local.get $s1)))
    (block $fours_done
      (loop $fours
        ;; not for one activation row (decode): it reads 4 groups' runs of 4n bytes side by side, the
        ;; loop below one at a time, in memory order (gemm_q4b says why that streams faster)
        (br_if $fours_done (i32.or (i32.eq (local.get $rows) (i32.const 1)) (i32.gt_u (i32.add (local.get $o) (i32.const 16)) (local.get $nout))))
        (local.set $wg (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $n))))
        (local.set $wsg (i32.add (local.get $ws) (i32.shr_u (i32.mul (local.get $o) (local.get $n)) (i32.const 3))))
        (local.set $r (i32.const 0))
        (loop $rows4
          (local.set $pa (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $n))))
          (local.set $psg (i32.add (local.get $sg) (i32.mul (local.get $r) (local.get $n))))
          (local.set $end (i32.add (local.get $pa) (local.get $n)))
          (local.set $pw (local.get $wg))
          (local.set $ps (local.get $wsg))
          (local.set $f0 (v128.const f32x4 0 0 0 0))
          (local.set $f1 (v128.const f32x4 0 0 0 0))
          (local.set $f2 (v128.const f32x4 0 0 0 0))
          (local.set $f3 (v128.const f32x4 0 0 0 0))
          (loop $blocks4
            (local.set $x0 (v128.load (local.get $pa)))
            (local.set $x1 (v128.load offset=16 (local.get $pa)))
            (local.set $m0 (v128.load (local.get $psg)))
            (local.set $m1 (v128.load offset=16 (local.get $psg)))
            (local.set $xa (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $x0) (local.get $x0)))
            (local.set $xs (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $m0) (local.get $m0)))
            (local.set $v (v128.load (local.get $pw)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (v128.const i32x4 0 0 0 0)))
            (local.set $v (v128.load (i32.add (local.get $pw) (local.get $g1))))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (v128.const i32x4 0 0 0 0)))
            (local.set $v (v128.load (i32.add (local.get $pw) (local.get $g2))))
            (local.set $q2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (v128.const i32x4 0 0 0 0)))
            (local.set $v (v128.load (i32.add (local.get $pw) (local.get $g3))))
            (local.set $q3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (v128.const i32x4 0 0 0 0)))
            (local.set $xa (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $x0) (local.get $x0)))
            (local.set $xs (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $m0) (local.get $m0)))
            (local.set $v (v128.load offset=16 (local.get $pw)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q0)))
            (local.set $v (v128.load offset=16 (i32.add (local.get $pw) (local.get $g1))))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q1)))
            (local.set $v (v128.load offset=16 (i32.add (local.get $pw) (local.get $g2))))
            (local.set $q2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q2)))
            (local.set $v (v128.load offset=16 (i32.add (local.get $pw) (local.get $g3))))
            (local.set $q3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q3)))
            (local.set $xa (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $x0) (local.get $x0)))
            (local.set $xs (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $m0) (local.get $m0)))
            (local.set $v (v128.load offset=32 (local.get $pw)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q0)))
            (local.set $v (v128.load offset=32 (i32.add (local.get $pw) (local.get $g1))))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q1)))
            (local.set $v (v128.load offset=32 (i32.add (local.get $pw) (local.get $g2))))
            (local.set $q2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q2)))
            (local.set $v (v128.load offset=32 (i32.add (local.get $pw) (local.get $g3))))
            (local.set $q3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q3)))
            (local.set $xa (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $x0) (local.get $x0)))
            (local.set $xs (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $m0) (local.get $m0)))
            (local.set $v (v128.load offset=48 (local.get $pw)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q0)))
            (local.set $v (v128.load offset=48 (i32.add (local.get $pw) (local.get $g1))))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q1)))
            (local.set $v (v128.load offset=48 (i32.add (local.get $pw) (local.get $g2))))
            (local.set $q2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q2)))
            (local.set $v (v128.load offset=48 (i32.add (local.get $pw) (local.get $g3))))
            (local.set $q3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q3)))
            (local.set $xa (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $x1) (local.get $x1)))
            (local.set $xs (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $m1) (local.get $m1)))
            (local.set $v (v128.load offset=64 (local.get $pw)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q0)))
            (local.set $v (v128.load offset=64 (i32.add (local.get $pw) (local.get $g1))))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q1)))
            (local.set $v (v128.load offset=64 (i32.add (local.get $pw) (local.get $g2))))
            (local.set $q2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q2)))
            (local.set $v (v128.load offset=64 (i32.add (local.get $pw) (local.get $g3))))
            (local.set $q3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q3)))
            (local.set $xa (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $x1) (local.get $x1)))
            (local.set $xs (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $m1) (local.get $m1)))
            (local.set $v (v128.load offset=80 (local.get $pw)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q0)))
            (local.set $v (v128.load offset=80 (i32.add (local.get $pw) (local.get $g1))))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q1)))
            (local.set $v (v128.load offset=80 (i32.add (local.get $pw) (local.get $g2))))
            (local.set $q2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q2)))
            (local.set $v (v128.load offset=80 (i32.add (local.get $pw) (local.get $g3))))
            (local.set $q3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q3)))
            (local.set $xa (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $x1) (local.get $x1)))
            (local.set $xs (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $m1) (local.get $m1)))
            (local.set $v (v128.load offset=96 (local.get $pw)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q0)))
            (local.set $v (v128.load offset=96 (i32.add (local.get $pw) (local.get $g1))))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q1)))
            (local.set $v (v128.load offset=96 (i32.add (local.get $pw) (local.get $g2))))
            (local.set $q2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q2)))
            (local.set $v (v128.load offset=96 (i32.add (local.get $pw) (local.get $g3))))
            (local.set $q3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q3)))
            (local.set $xa (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $x1) (local.get $x1)))
            (local.set $xs (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $m1) (local.get $m1)))
            (local.set $v (v128.load offset=112 (local.get $pw)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q0)))
            (local.set $v (v128.load offset=112 (i32.add (local.get $pw) (local.get $g1))))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q1)))
            (local.set $v (v128.load offset=112 (i32.add (local.get $pw) (local.get $g2))))
            (local.set $q2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q2)))
            (local.set $v (v128.load offset=112 (i32.add (local.get $pw) (local.get $g3))))
            (local.set $q3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q3)))
            (local.set $f0 (f32x4.add (local.get $f0) (f32x4.mul (f32x4.convert_i32x4_s (local.get $q0)) (v128.load (local.get $ps)))))
            (local.set $f1 (f32x4.add (local.get $f1) (f32x4.mul (f32x4.convert_i32x4_s (local.get $q1)) (v128.load (i32.add (local.get $ps) (local.get $s1))))))
            (local.set $f2 (f32x4.add (local.get $f2) (f32x4.mul (f32x4.convert_i32x4_s (local.get $q2)) (v128.load (i32.add (local.get $ps) (local.get $s2))))))
            (local.set $f3 (f32x4.add (local.get $f3) (f32x4.mul (f32x4.convert_i32x4_s (local.get $q3)) (v128.load (i32.add (local.get $ps) (local.get $s3))))))
            (local.set $pa (i32.add (local.get $pa) (i32.const 32)))
            (local.set $psg (i32.add (local.get $psg) (i32.const 32)))
            (local.set $pw (i32.add (local.get $pw) (i32.const 128)))
            (local.set $ps (i32.add (local.get $ps) (i32.const 16)))
            (br_if $blocks4 (i32.lt_u (local.get $pa) (local.get $end))))
          (local.set $sc (f32x4.splat (f32.load (i32.add (local.get $as) (i32.shl (local.get $r) (i32.const 2))))))
          (local.set $yr (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $ldy)) (local.get $o)) (i32.const 2))))
          (v128.store offset=0 (local.get $yr) (f32x4.mul (local.get $f0) (local.get $sc)))
          (v128.store offset=16 (local.get $yr) (f32x4.mul (local.get $f1) (local.get $sc)))
          (v128.store offset=32 (local.get $yr) (f32x4.mul (local.get $f2) (local.get $sc)))
          (v128.store offset=48 (local.get $yr) (f32x4.mul (local.get $f3) (local.get $sc)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br_if $rows4 (i32.lt_u (local.get $r) (local.get $rows))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $fours)))
    (block $done
      (loop $groups
        (br_if $done (i32.ge_u (local.get $o) (local.get $nout)))
        (local.set $wg (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $n))))
        (local.set $wsg (i32.add (local.get $ws) (i32.shr_u (i32.mul (local.get $o) (local.get $n)) (i32.const 3))))
        (local.set $r (i32.const 0))
        (loop $rows1
          (local.set $pa (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $n))))
          (local.set $psg (i32.add (local.get $sg) (i32.mul (local.get $r) (local.get $n))))
          (local.set $end (i32.add (local.get $pa) (local.get $n)))
          (local.set $pw (local.get $wg))
          (local.set $ps (local.get $wsg))
          (local.set $f0 (v128.const f32x4 0 0 0 0))
          (loop $blocks1
            (local.set $x0 (v128.load (local.get $pa)))
            (local.set $x1 (v128.load offset=16 (local.get $pa)))
            (local.set $m0 (v128.load (local.get $psg)))
            (local.set $m1 (v128.load offset=16 (local.get $psg)))
            (local.set $xa (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $x0) (local.get $x0)))
            (local.set $xs (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $m0) (local.get $m0)))
            (local.set $v (v128.load (local.get $pw)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (v128.const i32x4 0 0 0 0)))
            (local.set $xa (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $x0) (local.get $x0)))
            (local.set $xs (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $m0) (local.get $m0)))
            (local.set $v (v128.load offset=16 (local.get $pw)))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (v128.const i32x4 0 0 0 0)))
            (local.set $xa (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $x0) (local.get $x0)))
            (local.set $xs (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $m0) (local.get $m0)))
            (local.set $v (v128.load offset=32 (local.get $pw)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q0)))
            (local.set $xa (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $x0) (local.get $x0)))
            (local.set $xs (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $m0) (local.get $m0)))
            (local.set $v (v128.load offset=48 (local.get $pw)))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q1)))
            (local.set $xa (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $x1) (local.get $x1)))
            (local.set $xs (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $m1) (local.get $m1)))
            (local.set $v (v128.load offset=64 (local.get $pw)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q0)))
            (local.set $xa (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $x1) (local.get $x1)))
            (local.set $xs (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $m1) (local.get $m1)))
            (local.set $v (v128.load offset=80 (local.get $pw)))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q1)))
            (local.set $xa (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $x1) (local.get $x1)))
            (local.set $xs (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $m1) (local.get $m1)))
            (local.set $v (v128.load offset=96 (local.get $pw)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q0)))
            (local.set $xa (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $x1) (local.get $x1)))
            (local.set $xs (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $m1) (local.get $m1)))
            (local.set $v (v128.load offset=112 (local.get $pw)))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.sub (v128.xor (local.get $v) (local.get $xs)) (local.get $xs)) (local.get $xa) (local.get $q1)))
            (local.set $f0 (f32x4.add (local.get $f0) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.add (local.get $q0) (local.get $q1))) (v128.load (local.get $ps)))))
            (local.set $pa (i32.add (local.get $pa) (i32.const 32)))
            (local.set $psg (i32.add (local.get $psg) (i32.const 32)))
            (local.set $pw (i32.add (local.get $pw) (i32.const 128)))
            (local.set $ps (i32.add (local.get $ps) (i32.const 16)))
            (br_if $blocks1 (i32.lt_u (local.get $pa) (local.get $end))))
          (local.set $sc (f32x4.splat (f32.load (i32.add (local.get $as) (i32.shl (local.get $r) (i32.const 2))))))
          (local.set $yr (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $ldy)) (local.get $o)) (i32.const 2))))
          (v128.store offset=0 (local.get $yr) (f32x4.mul (local.get $f0) (local.get $sc)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br_if $rows1 (i32.lt_u (local.get $r) (local.get $rows))))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $groups))))

  ;; 4-bit weights in 32-value blocks with one scale each (Q4_B32, GGUF Q4_0's nibble bytes): a block
  ;; is 16 bytes a row, low nibbles values 0..15, high nibbles 16..31, each stored + 8, and a group of
  ;; 4 rows interleaves its blocks by 4 bytes (simd.h): the 16 bytes at 16m of a group's block hold
  ;; bytes 4m..4m+3 of rows 0, 1, 2, 3 in turn. Against the activations 4m..4m+3 repeated in every
  ;; lane the low nibbles give each lane its row's 4 products, the high nibbles against 16+4m..19+4m
  ;; theirs: a block's 8 dot products sum the 4 rows as one vector, with nothing to transpose. The
  ;; nibbles (0..15) are the unsigned 7-bit operand as they come; the + 8 is taken out with each
  ;; activation block's offset (8 · its sum, computed with the quantized activations):
  ;; acc += f32(Σ_block a·nibble − boff[r][b]) · ws[o..o+3][b]. A group is 2n bytes.
  ;; Each block loads its 32 activations as two vectors and repeats their 4-byte lanes with a shuffle
  ;; (one pshufd): V8 computes the address of a v128.load32_splat with an offset in an extra
  ;; instruction. Pointers advance by a constant per block, so no address is multiplied or shifted.
  (func $gemm_q4b (export "gemm_q4b")
    (param $y i32) (param $ldy i32) (param $a i32) (param $as i32) (param $boff i32) (param $rows i32)
    (param $w i32) (param $ws i32) (param $nout i32) (param $n i32)
    (local $o i32) (local $r i32) (local $wg i32) (local $wsg i32)
    (local $pa i32) (local $pa1 i32) (local $pw i32) (local $ps i32) (local $pb i32) (local $pb1 i32) (local $end i32)
    (local $g1 i32) (local $s1 i32)
    (local $f0 v128) (local $q0 v128) (local $f1 v128) (local $q1 v128) (local $f2 v128) (local $q2 v128) (local $f3 v128) (local $q3 v128)
    (local $c0 v128) (local $c1 v128) (local $d0 v128) (local $d1 v128) (local $x0 v128) (local $x1 v128) (local $y0 v128) (local $y1 v128)
    (local $t v128) (local $v v128) (local $lo v128) (local $hi v128) (local $acc v128) (local $acc1 v128) (local $sc v128) (local $m15 v128)
    ;; The nibble mask, built from a parameter (n < 2^31, so n >> 31 is 0): V8 keeps a value in a
    ;; register, but rematerializes a v128.const at every use (3 instructions), and lowers
    ;; i8x16.shr_u to a 16-bit shift plus a mask it builds each time (3 more); the high nibbles are
    ;; i16x8.shr_u and this mask instead.
    (local.set $m15 (i8x16.splat (i32.or (i32.shr_u (local.get $n) (i32.const 31)) (i32.const 15))))
    (local.set $g1 (i32.shl (local.get $n) (i32.const 1)))  ;; group 1's weights: 2n bytes after group 0's
    (local.set $s1 (i32.shr_u (local.get $n) (i32.const 1)))  ;; its scales: n / 2 bytes after group 0's
    ;; One activation row (decode) takes the general loop below, one group (4 outputs) at a time:
    ;; a group's 4 rows are one run of 2n bytes, so the passes read the weights in memory order. A
    ;; pass over 4 groups (sharing each block's repeated activation lanes) took 0.7× the time in
    ;; cache, but reads 4 runs of 2n bytes side by side, which the hardware prefetchers follow badly:
    ;; from memory, SmolLM2-135M's shapes streamed 5.1–6.1 GB/s that way and 8.9–10.7 one group at a
    ;; time (AMD EPYC, BENCHMARKS.md), and decoding reads every weight from memory.
    ;; Two or more activation rows (prefill, batches): an odd last row first, alone (the general
    ;; loop's one-row pass), then 2 rows × 2 groups (8 outputs) per pass, so that each unpacked weight vector
    ;; serves two rows and each repeated activation lane two groups (the lanes are repeated straight
    ;; from memory: registers hold the 4 + 4 accumulators); a last single group goes through the loop
    ;; below. Each tile is 0.9× the time of 2 rows × 1 group at 128 rows.
    (if (i32.and (i32.gt_u (local.get $rows) (i32.const 1)) (i32.and (local.get $rows) (i32.const 1)))
      (then
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (call $gemm_q4b
        (i32.add (local.get $y) (i32.shl (i32.mul (local.get $rows) (local.get $ldy)) (i32.const 2))) (local.get $ldy)
        (i32.add (local.get $a) (i32.mul (local.get $rows) (local.get $n))) (i32.add (local.get $as) (i32.shl (local.get $rows) (i32.const 2)))
        (i32.add (local.get $boff) (i32.shr_u (i32.mul (local.get $rows) (local.get $n)) (i32.const 3))) (i32.const 1)
        (local.get $w) (local.get $ws) (local.get $nout) (local.get $n))))
    (if (i32.ge_u (local.get $rows) (i32.const 2))
      (then
      (block $tiles_done
      (loop $tile_groups
        (br_if $tiles_done (i32.gt_u (i32.add (local.get $o) (i32.const 8)) (local.get $nout)))
        (local.set $wg (i32.add (local.get $w) (i32.shr_u (i32.mul (local.get $o) (local.get $n)) (i32.const 1))))
        (local.set $wsg (i32.add (local.get $ws) (i32.shr_u (i32.mul (local.get $o) (local.get $n)) (i32.const 3))))
        (local.set $r (i32.const 0))
        (loop $tile_rows
          (local.set $pa (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $n))))
          (local.set $pb (i32.add (local.get $boff) (i32.shr_u (i32.mul (local.get $r) (local.get $n)) (i32.const 3))))
          (local.set $pa1 (i32.add (local.get $pa) (local.get $n)))
          (local.set $pb1 (i32.add (local.get $pb) (i32.shr_u (local.get $n) (i32.const 3))))
          (local.set $end (i32.add (local.get $pa) (local.get $n)))
          (local.set $pw (local.get $wg))
          (local.set $ps (local.get $wsg))
          (local.set $f0 (v128.const f32x4 0 0 0 0))
          (local.set $f1 (v128.const f32x4 0 0 0 0))
          (local.set $f2 (v128.const f32x4 0 0 0 0))
          (local.set $f3 (v128.const f32x4 0 0 0 0))
          (loop $tile_blocks
            (local.set $v (v128.load (local.get $pw)))
            (local.set $lo (v128.and (local.get $v) (local.get $m15)))
            (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)))
            (local.set $v (v128.load (i32.add (local.get $pw) (local.get $g1))))
            (local.set $d0 (v128.and (local.get $v) (local.get $m15)))
            (local.set $d1 (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)))
            (local.set $x0 (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.tee $t (v128.load (local.get $pa))) (local.get $t)))
            (local.set $x1 (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.tee $t (v128.load offset=16 (local.get $pa))) (local.get $t)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $hi) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $lo) (v128.const i32x4 0 0 0 0))))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $d1) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $d0) (v128.const i32x4 0 0 0 0))))
            (local.set $x0 (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.tee $t (v128.load (local.get $pa1))) (local.get $t)))
            (local.set $x1 (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.tee $t (v128.load offset=16 (local.get $pa1))) (local.get $t)))
            (local.set $q2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $hi) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $lo) (v128.const i32x4 0 0 0 0))))
            (local.set $q3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $d1) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $d0) (v128.const i32x4 0 0 0 0))))
            (local.set $v (v128.load offset=16 (local.get $pw)))
            (local.set $lo (v128.and (local.get $v) (local.get $m15)))
            (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)))
            (local.set $v (v128.load offset=16 (i32.add (local.get $pw) (local.get $g1))))
            (local.set $d0 (v128.and (local.get $v) (local.get $m15)))
            (local.set $d1 (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)))
            (local.set $x0 (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.tee $t (v128.load (local.get $pa))) (local.get $t)))
            (local.set $x1 (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.tee $t (v128.load offset=16 (local.get $pa))) (local.get $t)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $hi) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $lo) (local.get $q0))))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $d1) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $d0) (local.get $q1))))
            (local.set $x0 (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.tee $t (v128.load (local.get $pa1))) (local.get $t)))
            (local.set $x1 (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.tee $t (v128.load offset=16 (local.get $pa1))) (local.get $t)))
            (local.set $q2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $hi) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $lo) (local.get $q2))))
            (local.set $q3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $d1) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $d0) (local.get $q3))))
            (local.set $v (v128.load offset=32 (local.get $pw)))
            (local.set $lo (v128.and (local.get $v) (local.get $m15)))
            (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)))
            (local.set $v (v128.load offset=32 (i32.add (local.get $pw) (local.get $g1))))
            (local.set $d0 (v128.and (local.get $v) (local.get $m15)))
            (local.set $d1 (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)))
            (local.set $x0 (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.tee $t (v128.load (local.get $pa))) (local.get $t)))
            (local.set $x1 (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.tee $t (v128.load offset=16 (local.get $pa))) (local.get $t)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $hi) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $lo) (local.get $q0))))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $d1) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $d0) (local.get $q1))))
            (local.set $x0 (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.tee $t (v128.load (local.get $pa1))) (local.get $t)))
            (local.set $x1 (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.tee $t (v128.load offset=16 (local.get $pa1))) (local.get $t)))
            (local.set $q2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $hi) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $lo) (local.get $q2))))
            (local.set $q3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $d1) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $d0) (local.get $q3))))
            (local.set $v (v128.load offset=48 (local.get $pw)))
            (local.set $lo (v128.and (local.get $v) (local.get $m15)))
            (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)))
            (local.set $v (v128.load offset=48 (i32.add (local.get $pw) (local.get $g1))))
            (local.set $d0 (v128.and (local.get $v) (local.get $m15)))
            (local.set $d1 (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)))
            (local.set $x0 (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.tee $t (v128.load (local.get $pa))) (local.get $t)))
            (local.set $x1 (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.tee $t (v128.load offset=16 (local.get $pa))) (local.get $t)))
            (local.set $q0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $hi) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $lo) (local.get $q0))))
            (local.set $q1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $d1) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $d0) (local.get $q1))))
            (local.set $x0 (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.tee $t (v128.load (local.get $pa1))) (local.get $t)))
            (local.set $x1 (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.tee $t (v128.load offset=16 (local.get $pa1))) (local.get $t)))
            (local.set $q2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $hi) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $lo) (local.get $q2))))
            (local.set $q3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x1) (local.get $d1) (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x0) (local.get $d0) (local.get $q3))))
            (local.set $v (v128.load32_splat (local.get $pb)))
            (local.set $f0 (f32x4.add (local.get $f0) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.sub (block_sum (local.get $q0)) (local.get $v))) (v128.load (local.get $ps)))))
            (local.set $f1 (f32x4.add (local.get $f1) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.sub (block_sum (local.get $q1)) (local.get $v))) (v128.load (i32.add (local.get $ps) (local.get $s1))))))
            (local.set $v (v128.load32_splat (local.get $pb1)))
            (local.set $f2 (f32x4.add (local.get $f2) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.sub (block_sum (local.get $q2)) (local.get $v))) (v128.load (local.get $ps)))))
            (local.set $f3 (f32x4.add (local.get $f3) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.sub (block_sum (local.get $q3)) (local.get $v))) (v128.load (i32.add (local.get $ps) (local.get $s1))))))
            (local.set $pa (i32.add (local.get $pa) (i32.const 32)))
            (local.set $pa1 (i32.add (local.get $pa1) (i32.const 32)))
            (local.set $pw (i32.add (local.get $pw) (i32.const 64)))
            (local.set $ps (i32.add (local.get $ps) (i32.const 16)))
            (local.set $pb (i32.add (local.get $pb) (i32.const 4)))
            (local.set $pb1 (i32.add (local.get $pb1) (i32.const 4)))
            (br_if $tile_blocks (i32.lt_u (local.get $pa) (local.get $end))))
          (v128.store (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $ldy)) (local.get $o)) (i32.const 2))) (f32x4.mul (local.get $f0) (f32x4.splat (f32.load (i32.add (local.get $as) (i32.shl (local.get $r) (i32.const 2)))))))
          (v128.store offset=16 (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $ldy)) (local.get $o)) (i32.const 2))) (f32x4.mul (local.get $f1) (f32x4.splat (f32.load (i32.add (local.get $as) (i32.shl (local.get $r) (i32.const 2)))))))
          (v128.store (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (i32.add (local.get $r) (i32.const 1)) (local.get $ldy)) (local.get $o)) (i32.const 2))) (f32x4.mul (local.get $f2) (f32x4.splat (f32.load (i32.add (local.get $as) (i32.shl (i32.add (local.get $r) (i32.const 1)) (i32.const 2)))))))
          (v128.store offset=16 (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (i32.add (local.get $r) (i32.const 1)) (local.get $ldy)) (local.get $o)) (i32.const 2))) (f32x4.mul (local.get $f3) (f32x4.splat (f32.load (i32.add (local.get $as) (i32.shl (i32.add (local.get $r) (i32.const 1)) (i32.const 2)))))))
          (local.set $r (i32.add (local.get $r) (i32.const 2)))
          (br_if $tile_rows (i32.lt_u (local.get $r) (local.get $rows))))
        (local.set $o (i32.add (local.get $o) (i32.const 8)))
        (br $tile_groups)))
      (if (i32.ge_u (local.get $o) (local.get $nout)) (then (return)))))
    (loop $outputs
      (local.set $wg (i32.add (local.get $w) (i32.shr_u (i32.mul (local.get $o) (local.get $n)) (i32.const 1))))
      (local.set $wsg (i32.add (local.get $ws) (i32.shr_u (i32.mul (local.get $o) (local.get $n)) (i32.const 3))))
      (local.set $r (i32.const 0))
      ;; Two activation rows at a time: each block's nibbles are unpacked once for both.
      (block $pairs_done
        (loop $pairs
          (br_if $pairs_done (i32.ge_u (i32.add (local.get $r) (i32.const 1)) (local.get $rows)))
          (local.set $pa (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $n))))
          (local.set $pa1 (i32.add (local.get $pa) (local.get $n)))
          (local.set $end (local.get $pa1))
          (local.set $pb (i32.add (local.get $boff) (i32.shr_u (i32.mul (local.get $r) (local.get $n)) (i32.const 3))))
          (local.set $pb1 (i32.add (local.get $pb) (i32.shr_u (local.get $n) (i32.const 3))))
          (local.set $pw (local.get $wg))
          (local.set $ps (local.get $wsg))
          (local.set $acc (v128.const f32x4 0 0 0 0))
          (local.set $acc1 (v128.const f32x4 0 0 0 0))
          (loop $pair_blocks
            (local.set $x0 (v128.load (local.get $pa)))
            (local.set $x1 (v128.load offset=16 (local.get $pa)))
            (local.set $y0 (v128.load (local.get $pa1)))
            (local.set $y1 (v128.load offset=16 (local.get $pa1)))
            (local.set $v (v128.load (local.get $pw)))
            (local.set $lo (v128.and (local.get $v) (local.get $m15)))
            (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)))
            (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $x0) (local.get $x0)) (local.get $lo) (v128.const i32x4 0 0 0 0)))
            (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $x1) (local.get $x1)) (local.get $hi) (v128.const i32x4 0 0 0 0)))
            (local.set $d0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $y0) (local.get $y0)) (local.get $lo) (v128.const i32x4 0 0 0 0)))
            (local.set $d1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $y1) (local.get $y1)) (local.get $hi) (v128.const i32x4 0 0 0 0)))
            (local.set $v (v128.load offset=16 (local.get $pw)))
            (local.set $lo (v128.and (local.get $v) (local.get $m15)))
            (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)))
            (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $x0) (local.get $x0)) (local.get $lo) (local.get $c0)))
            (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $x1) (local.get $x1)) (local.get $hi) (local.get $c1)))
            (local.set $d0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $y0) (local.get $y0)) (local.get $lo) (local.get $d0)))
            (local.set $d1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $y1) (local.get $y1)) (local.get $hi) (local.get $d1)))
            (local.set $v (v128.load offset=32 (local.get $pw)))
            (local.set $lo (v128.and (local.get $v) (local.get $m15)))
            (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)))
            (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $x0) (local.get $x0)) (local.get $lo) (local.get $c0)))
            (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $x1) (local.get $x1)) (local.get $hi) (local.get $c1)))
            (local.set $d0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $y0) (local.get $y0)) (local.get $lo) (local.get $d0)))
            (local.set $d1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $y1) (local.get $y1)) (local.get $hi) (local.get $d1)))
            (local.set $v (v128.load offset=48 (local.get $pw)))
            (local.set $lo (v128.and (local.get $v) (local.get $m15)))
            (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)))
            (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $x0) (local.get $x0)) (local.get $lo) (local.get $c0)))
            (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $x1) (local.get $x1)) (local.get $hi) (local.get $c1)))
            (local.set $d0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $y0) (local.get $y0)) (local.get $lo) (local.get $d0)))
            (local.set $d1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $y1) (local.get $y1)) (local.get $hi) (local.get $d1)))
            (local.set $sc (v128.load (local.get $ps)))
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.sub (i32x4.add (block_sum (local.get $c0)) (block_sum (local.get $c1))) (v128.load32_splat (local.get $pb)))) (local.get $sc))))
            (local.set $acc1 (f32x4.add (local.get $acc1) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.sub (i32x4.add (block_sum (local.get $d0)) (block_sum (local.get $d1))) (v128.load32_splat (local.get $pb1)))) (local.get $sc))))
            (local.set $pa (i32.add (local.get $pa) (i32.const 32)))
            (local.set $pa1 (i32.add (local.get $pa1) (i32.const 32)))
            (local.set $pw (i32.add (local.get $pw) (i32.const 64)))
            (local.set $ps (i32.add (local.get $ps) (i32.const 16)))
            (local.set $pb (i32.add (local.get $pb) (i32.const 4)))
            (local.set $pb1 (i32.add (local.get $pb1) (i32.const 4)))
            (br_if $pair_blocks (i32.lt_u (local.get $pa) (local.get $end))))
          (v128.store
          (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $ldy)) (local.get $o)) (i32.const 2)))
          (f32x4.mul (local.get $acc) (f32x4.splat (f32.load (i32.add (local.get $as) (i32.shl (local.get $r) (i32.const 2)))))))
          (v128.store
          (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (i32.add (local.get $r) (i32.const 1)) (local.get $ldy)) (local.get $o)) (i32.const 2)))
          (f32x4.mul (local.get $acc1) (f32x4.splat (f32.load (i32.add (local.get $as) (i32.shl (i32.add (local.get $r) (i32.const 1)) (i32.const 2)))))))
          (local.set $r (i32.add (local.get $r) (i32.const 2)))
          (br $pairs)))
      ;; an odd last activation row alone: two chains of dot products (low and high nibbles)
      (if (i32.lt_u (local.get $r) (local.get $rows))
        (then
        (local.set $pa (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $n))))
        (local.set $end (i32.add (local.get $pa) (local.get $n)))
        (local.set $pb (i32.add (local.get $boff) (i32.shr_u (i32.mul (local.get $r) (local.get $n)) (i32.const 3))))
        (local.set $pw (local.get $wg))
        (local.set $ps (local.get $wsg))
        (local.set $acc (v128.const f32x4 0 0 0 0))
        (loop $blocks
          (local.set $x0 (v128.load (local.get $pa)))
          (local.set $x1 (v128.load offset=16 (local.get $pa)))
          (local.set $v (v128.load (local.get $pw)))
          (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $x0) (local.get $x0)) (v128.and (local.get $v) (local.get $m15)) (v128.const i32x4 0 0 0 0)))
          (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $x1) (local.get $x1)) (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)) (v128.const i32x4 0 0 0 0)))
          (local.set $v (v128.load offset=16 (local.get $pw)))
          (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $x0) (local.get $x0)) (v128.and (local.get $v) (local.get $m15)) (local.get $c0)))
          (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $x1) (local.get $x1)) (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)) (local.get $c1)))
          (local.set $v (v128.load offset=32 (local.get $pw)))
          (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $x0) (local.get $x0)) (v128.and (local.get $v) (local.get $m15)) (local.get $c0)))
          (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $x1) (local.get $x1)) (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)) (local.get $c1)))
          (local.set $v (v128.load offset=48 (local.get $pw)))
          (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $x0) (local.get $x0)) (v128.and (local.get $v) (local.get $m15)) (local.get $c0)))
          (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $x1) (local.get $x1)) (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $m15)) (local.get $c1)))
          (local.set $sc (v128.load (local.get $ps)))
          (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.sub (i32x4.add (block_sum (local.get $c0)) (block_sum (local.get $c1))) (v128.load32_splat (local.get $pb)))) (local.get $sc))))
          (local.set $pa (i32.add (local.get $pa) (i32.const 32)))
          (local.set $pw (i32.add (local.get $pw) (i32.const 64)))
          (local.set $ps (i32.add (local.get $ps) (i32.const 16)))
          (local.set $pb (i32.add (local.get $pb) (i32.const 4)))
          (br_if $blocks (i32.lt_u (local.get $pa) (local.get $end))))
        (v128.store
          (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $ldy)) (local.get $o)) (i32.const 2)))
          (f32x4.mul (local.get $acc) (f32x4.splat (f32.load (i32.add (local.get $as) (i32.shl (local.get $r) (i32.const 2)))))))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br_if $outputs (i32.lt_u (local.get $o) (local.get $nout)))))

  ;; Attention over the f32 KV cache (attention.c), with f32x4.relaxed_madd: one instruction per 4
  ;; multiply-adds where the CPU fuses them (x64 with FMA3, arm64), two where it does not; either way
  ;; the result is the f32 sum, rounded once or twice per term.
  ;;
  ;; scores: out[j·n + t] = q_j · k_t for the G query heads of a group (q_j at q + j·hd floats)
  ;; and `keys` consecutive keys (stride hd floats, keys % 4 == 0, hd % 8 == 0). Four keys at a time,
  ;; each query vector loaded once for the four; two accumulators per key (dimensions i and i + 4)
  ;; keep eight multiply-adds in flight; the four sums come out as one vector.
  (func (export "scores")
    (param $out i32) (param $n i32) (param $q i32) (param $G i32) (param $k i32) (param $keys i32) (param $hd i32)
    (local $t i32) (local $j i32) (local $i i32) (local $qj i32) (local $row i32)
    (local $k0 i32) (local $k1 i32) (local $k2 i32) (local $k3 i32)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $e0 v128) (local $e1 v128) (local $e2 v128) (local $e3 v128) (local $x v128) (local $x2 v128) (local $ab v128) (local $cd v128)
    (local.set $row (i32.shl (local.get $hd) (i32.const 2)))
    (block $keys_done
      (loop $key_blocks
        (br_if $keys_done (i32.ge_u (local.get $t) (local.get $keys)))
        (local.set $k0 (i32.add (local.get $k) (i32.mul (local.get $t) (local.get $row))))
        (local.set $k1 (i32.add (local.get $k0) (local.get $row)))
        (local.set $k2 (i32.add (local.get $k1) (local.get $row)))
        (local.set $k3 (i32.add (local.get $k2) (local.get $row)))
        (local.set $j (i32.const 0))
        (loop $heads
          (local.set $qj (i32.add (local.get $q) (i32.mul (local.get $j) (local.get $row))))
          (local.set $s0 (v128.const f32x4 0 0 0 0))
          (local.set $s1 (v128.const f32x4 0 0 0 0))
          (local.set $s2 (v128.const f32x4 0 0 0 0))
          (local.set $s3 (v128.const f32x4 0 0 0 0))
          (local.set $e0 (v128.const f32x4 0 0 0 0))
          (local.set $e1 (v128.const f32x4 0 0 0 0))
          (local.set $e2 (v128.const f32x4 0 0 0 0))
          (local.set $e3 (v128.const f32x4 0 0 0 0))
          (local.set $i (i32.const 0))
          (loop $dims
            (local.set $x (v128.load (i32.add (local.get $qj) (local.get $i))))
            (local.set $x2 (v128.load offset=16 (i32.add (local.get $qj) (local.get $i))))
            (local.set $s0 (f32x4.relaxed_madd (local.get $x) (v128.load (i32.add (local.get $k0) (local.get $i))) (local.get $s0)))
            (local.set $s1 (f32x4.relaxed_madd (local.get $x) (v128.load (i32.add (local.get $k1) (local.get $i))) (local.get $s1)))
            (local.set $s2 (f32x4.relaxed_madd (local.get $x) (v128.load (i32.add (local.get $k2) (local.get $i))) (local.get $s2)))
            (local.set $s3 (f32x4.relaxed_madd (local.get $x) (v128.load (i32.add (local.get $k3) (local.get $i))) (local.get $s3)))
            (local.set $e0 (f32x4.relaxed_madd (local.get $x2) (v128.load offset=16 (i32.add (local.get $k0) (local.get $i))) (local.get $e0)))
            (local.set $e1 (f32x4.relaxed_madd (local.get $x2) (v128.load offset=16 (i32.add (local.get $k1) (local.get $i))) (local.get $e1)))
            (local.set $e2 (f32x4.relaxed_madd (local.get $x2) (v128.load offset=16 (i32.add (local.get $k2) (local.get $i))) (local.get $e2)))
            (local.set $e3 (f32x4.relaxed_madd (local.get $x2) (v128.load offset=16 (i32.add (local.get $k3) (local.get $i))) (local.get $e3)))
            (local.set $i (i32.add (local.get $i) (i32.const 32)))
            (br_if $dims (i32.lt_u (local.get $i) (local.get $row))))
          (local.set $s0 (f32x4.add (local.get $s0) (local.get $e0)))
          (local.set $s1 (f32x4.add (local.get $s1) (local.get $e1)))
          (local.set $s2 (f32x4.add (local.get $s2) (local.get $e2)))
          (local.set $s3 (f32x4.add (local.get $s3) (local.get $e3)))
          (local.set $ab (f32x4.add
            (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $s0) (local.get $s1))
            (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $s0) (local.get $s1))))
          (local.set $cd (f32x4.add
            (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $s2) (local.get $s3))
            (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $s2) (local.get $s3))))
          (v128.store
            (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $j) (local.get $n)) (local.get $t)) (i32.const 2)))
            (f32x4.add
              (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $ab) (local.get $cd))
              (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $ab) (local.get $cd))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br_if $heads (i32.lt_u (local.get $j) (local.get $G))))
        (local.set $t (i32.add (local.get $t) (i32.const 4)))
        (br $key_blocks))))

  ;; values: o[0..hd) += Σ_t<count p[t] · v_t (v_t at v + t·hd floats, hd % 32 == 0): 32 dimensions
  ;; per pass, eight accumulators kept in registers while the positions stream past.
  (func (export "values")
    (param $o i32) (param $p i32) (param $v i32) (param $count i32) (param $hd i32)
    (local $i i32) (local $t i32) (local $ot i32) (local $vt i32) (local $row i32) (local $pt v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local.set $row (i32.shl (local.get $hd) (i32.const 2)))
    (block $done
      (br_if $done (i32.eqz (local.get $count)))
      (loop $blocks
        (local.set $ot (i32.add (local.get $o) (local.get $i)))
        (local.set $a0 (v128.load offset=0 (local.get $ot)))
        (local.set $a1 (v128.load offset=16 (local.get $ot)))
        (local.set $a2 (v128.load offset=32 (local.get $ot)))
        (local.set $a3 (v128.load offset=48 (local.get $ot)))
        (local.set $a4 (v128.load offset=64 (local.get $ot)))
        (local.set $a5 (v128.load offset=80 (local.get $ot)))
        (local.set $a6 (v128.load offset=96 (local.get $ot)))
        (local.set $a7 (v128.load offset=112 (local.get $ot)))
        (local.set $vt (i32.add (local.get $v) (local.get $i)))
        (local.set $t (i32.const 0))
        (loop $positions
          (local.set $pt (f32x4.splat (f32.load (i32.add (local.get $p) (i32.shl (local.get $t) (i32.const 2))))))
            (local.set $a0 (f32x4.relaxed_madd (local.get $pt) (v128.load offset=0 (local.get $vt)) (local.get $a0)))
            (local.set $a1 (f32x4.relaxed_madd (local.get $pt) (v128.load offset=16 (local.get $vt)) (local.get $a1)))
            (local.set $a2 (f32x4.relaxed_madd (local.get $pt) (v128.load offset=32 (local.get $vt)) (local.get $a2)))
            (local.set $a3 (f32x4.relaxed_madd (local.get $pt) (v128.load offset=48 (local.get $vt)) (local.get $a3)))
            (local.set $a4 (f32x4.relaxed_madd (local.get $pt) (v128.load offset=64 (local.get $vt)) (local.get $a4)))
            (local.set $a5 (f32x4.relaxed_madd (local.get $pt) (v128.load offset=80 (local.get $vt)) (local.get $a5)))
            (local.set $a6 (f32x4.relaxed_madd (local.get $pt) (v128.load offset=96 (local.get $vt)) (local.get $a6)))
            (local.set $a7 (f32x4.relaxed_madd (local.get $pt) (v128.load offset=112 (local.get $vt)) (local.get $a7)))
          (local.set $vt (i32.add (local.get $vt) (local.get $row)))
          (local.set $t (i32.add (local.get $t) (i32.const 1)))
          (br_if $positions (i32.lt_u (local.get $t) (local.get $count))))
        (v128.store offset=0 (local.get $ot) (local.get $a0))
        (v128.store offset=16 (local.get $ot) (local.get $a1))
        (v128.store offset=32 (local.get $ot) (local.get $a2))
        (v128.store offset=48 (local.get $ot) (local.get $a3))
        (v128.store offset=64 (local.get $ot) (local.get $a4))
        (v128.store offset=80 (local.get $ot) (local.get $a5))
        (v128.store offset=96 (local.get $ot) (local.get $a6))
        (v128.store offset=112 (local.get $ot) (local.get $a7))
        (local.set $i (i32.add (local.get $i) (i32.const 128)))
        (br_if $blocks (i32.lt_u (local.get $i) (local.get $row))))))
  ;; Attention over the int8 KV cache (attention.c), 16 multiply-adds per relaxed dot product.
  ;;
  ;; scores_i8: out[j·n + t] (f32) = Σ_b qs[j·nb + b] · sk[b·P + t] · (Σ_{d in block b} k_t[d] · q_j[d]
  ;; − 8192 · ksum[b·P + t]) for the G query heads of a group and `keys` consecutive int8 keys
  ;; (stride hd bytes, keys % 4 == 0) with their scales sk and sums ksum per block of B dimensions
  ;; (B % 16 == 0, nb = hd / B), P floats apart. The query is 14 bits + 8192 (1..16383), as two
  ;; planes of the instruction's unsigned 7-bit operand: q_j = 128 · hi_j + lo_j, hi_j at q + j·hd,
  ;; lo_j hd · G bytes after it; qs its scales per block. Four keys at a time, both planes
  ;; (8 accumulators): each key vector is loaded once for the two dot products, each query vector
  ;; once for the four keys, and the four sums come out as one vector.
  (func (export "scores_i8")
    (param $out i32) (param $n i32) (param $q i32) (param $qs i32) (param $G i32) (param $k i32) (param $keys i32)
    (param $hd i32) (param $B i32) (param $sk i32) (param $ksum i32) (param $P i32)
    (local $t i32) (local $j i32) (local $i i32) (local $end i32) (local $qj i32) (local $lo i32) (local $qsb i32) (local $sb i32) (local $pb i32)
    (local $k0 i32) (local $k1 i32) (local $k2 i32) (local $k3 i32)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $e0 v128) (local $e1 v128) (local $e2 v128) (local $e3 v128)
    (local $x v128) (local $y v128) (local $kv v128) (local $ab v128) (local $cd v128) (local $acc v128)
    (local.set $pb (i32.shl (local.get $P) (i32.const 2)))
    (local.set $lo (i32.mul (local.get $G) (local.get $hd)))
    (block $keys_done
      (loop $key_blocks
        (br_if $keys_done (i32.ge_u (local.get $t) (local.get $keys)))
        (local.set $k0 (i32.add (local.get $k) (i32.mul (local.get $t) (local.get $hd))))
        (local.set $k1 (i32.add (local.get $k0) (local.get $hd)))
        (local.set $k2 (i32.add (local.get $k1) (local.get $hd)))
        (local.set $k3 (i32.add (local.get $k2) (local.get $hd)))
        (local.set $j (i32.const 0))
        (local.set $qsb (local.get $qs))
        (loop $heads
          (local.set $qj (i32.add (local.get $q) (i32.mul (local.get $j) (local.get $hd))))
          (local.set $sb (i32.shl (local.get $t) (i32.const 2)))  ;; byte offset of key t in block 0's scales
          (local.set $acc (v128.const f32x4 0 0 0 0))
          (local.set $i (i32.const 0))
          (loop $blocks
            (local.set $end (i32.add (local.get $i) (local.get $B)))
            (local.set $s0 (v128.const i32x4 0 0 0 0))
            (local.set $s1 (v128.const i32x4 0 0 0 0))
            (local.set $s2 (v128.const i32x4 0 0 0 0))
            (local.set $s3 (v128.const i32x4 0 0 0 0))
            (local.set $e0 (v128.const i32x4 0 0 0 0))
            (local.set $e1 (v128.const i32x4 0 0 0 0))
            (local.set $e2 (v128.const i32x4 0 0 0 0))
            (local.set $e3 (v128.const i32x4 0 0 0 0))
            (loop $dims
              (local.set $x (v128.load (i32.add (local.get $qj) (local.get $i))))
              (local.set $y (v128.load (i32.add (i32.add (local.get $qj) (local.get $lo)) (local.get $i))))
              (local.set $kv (v128.load (i32.add (local.get $k0) (local.get $i))))
              (local.set $s0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $kv) (local.get $x) (local.get $s0)))
              (local.set $e0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $kv) (local.get $y) (local.get $e0)))
              (local.set $kv (v128.load (i32.add (local.get $k1) (local.get $i))))
              (local.set $s1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $kv) (local.get $x) (local.get $s1)))
              (local.set $e1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $kv) (local.get $y) (local.get $e1)))
              (local.set $kv (v128.load (i32.add (local.get $k2) (local.get $i))))
              (local.set $s2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $kv) (local.get $x) (local.get $s2)))
              (local.set $e2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $kv) (local.get $y) (local.get $e2)))
              (local.set $kv (v128.load (i32.add (local.get $k3) (local.get $i))))
              (local.set $s3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $kv) (local.get $x) (local.get $s3)))
              (local.set $e3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $kv) (local.get $y) (local.get $e3)))
              (local.set $i (i32.add (local.get $i) (i32.const 16)))
              (br_if $dims (i32.lt_u (local.get $i) (local.get $end))))
            ;; 128 · hi + lo per key, then [Σ0, Σ1, Σ2, Σ3]
            (local.set $s0 (i32x4.add (i32x4.shl (local.get $s0) (i32.const 7)) (local.get $e0)))
            (local.set $s1 (i32x4.add (i32x4.shl (local.get $s1) (i32.const 7)) (local.get $e1)))
            (local.set $s2 (i32x4.add (i32x4.shl (local.get $s2) (i32.const 7)) (local.get $e2)))
            (local.set $s3 (i32x4.add (i32x4.shl (local.get $s3) (i32.const 7)) (local.get $e3)))
            (local.set $ab (i32x4.add
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $s0) (local.get $s1))
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $s0) (local.get $s1))))
            (local.set $cd (i32x4.add
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $s2) (local.get $s3))
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $s2) (local.get $s3))))
            ;; acc += qs · sk · (Σ − 8192 · ksum)
            (local.set $acc (f32x4.relaxed_madd
              (f32x4.mul
                (f32x4.relaxed_nmadd
                  (v128.load (i32.add (local.get $ksum) (local.get $sb)))
                  (v128.const f32x4 8192 8192 8192 8192)
                  (f32x4.convert_i32x4_s (i32x4.add
                    (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $ab) (local.get $cd))
                    (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $ab) (local.get $cd)))))
                (v128.load (i32.add (local.get $sk) (local.get $sb))))
              (v128.load32_splat (local.get $qsb))
              (local.get $acc)))
            (local.set $qsb (i32.add (local.get $qsb) (i32.const 4)))
            (local.set $sb (i32.add (local.get $sb) (local.get $pb)))
            (br_if $blocks (i32.lt_u (local.get $i) (local.get $hd))))
          (v128.store
            (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $j) (local.get $n)) (local.get $t)) (i32.const 2)))
            (local.get $acc))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br_if $heads (i32.lt_u (local.get $j) (local.get $G))))
        (local.set $t (i32.add (local.get $t) (i32.const 4)))
        (br $key_blocks))))

  ;; values_i8: acc[d] += Σ_t<count (128 · hi[t] + lo[t]) · v_t[d] for d < len (i32; len % 16 == 0):
  ;; one block's 14-bit value weights split into two 7-bit bytes (the unsigned operand), the values
  ;; int8 in groups of four positions, [group][dimension][4 positions] (group stride 4 · hd bytes,
  ;; count % 4 == 0: the caller pads the weights with zeros). One relaxed dot product takes four
  ;; dimensions of four positions; 16 dimensions per pass keep both weights' 8 accumulators in
  ;; registers. Each lane's sum stays below 2^31 when Σ_t (128 · hi[t] + lo[t]) < 2^31 / 127.
  (func (export "values_i8")
    (param $acc i32) (param $hi i32) (param $lo i32) (param $v i32) (param $count i32) (param $hd i32) (param $len i32)
    (local $i i32) (local $t i32) (local $at i32) (local $vt i32) (local $group i32) (local $wh v128) (local $wl v128) (local $x v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (local.set $group (i32.shl (local.get $hd) (i32.const 2)))
    (block $done
      (br_if $done (i32.eqz (local.get $count)))
      (loop $blocks
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0))
        (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $c0 (v128.const i32x4 0 0 0 0))
        (local.set $c1 (v128.const i32x4 0 0 0 0))
        (local.set $c2 (v128.const i32x4 0 0 0 0))
        (local.set $c3 (v128.const i32x4 0 0 0 0))
        (local.set $vt (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2))))
        (local.set $t (i32.const 0))
        (loop $positions
          (local.set $wh (v128.load32_splat (i32.add (local.get $hi) (local.get $t))))
          (local.set $wl (v128.load32_splat (i32.add (local.get $lo) (local.get $t))))
          (local.set $x (v128.load offset=0 (local.get $vt)))
          (local.set $a0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $wh) (local.get $a0)))
          (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $wl) (local.get $c0)))
          (local.set $x (v128.load offset=16 (local.get $vt)))
          (local.set $a1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $wh) (local.get $a1)))
          (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $wl) (local.get $c1)))
          (local.set $x (v128.load offset=32 (local.get $vt)))
          (local.set $a2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $wh) (local.get $a2)))
          (local.set $c2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $wl) (local.get $c2)))
          (local.set $x (v128.load offset=48 (local.get $vt)))
          (local.set $a3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $wh) (local.get $a3)))
          (local.set $c3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $wl) (local.get $c3)))
          (local.set $vt (i32.add (local.get $vt) (local.get $group)))
          (local.set $t (i32.add (local.get $t) (i32.const 4)))
          (br_if $positions (i32.lt_u (local.get $t) (local.get $count))))
        (local.set $at (i32.add (local.get $acc) (i32.shl (local.get $i) (i32.const 2))))
        (v128.store offset=0 (local.get $at) (i32x4.add (v128.load offset=0 (local.get $at)) (i32x4.add (i32x4.shl (local.get $a0) (i32.const 7)) (local.get $c0))))
        (v128.store offset=16 (local.get $at) (i32x4.add (v128.load offset=16 (local.get $at)) (i32x4.add (i32x4.shl (local.get $a1) (i32.const 7)) (local.get $c1))))
        (v128.store offset=32 (local.get $at) (i32x4.add (v128.load offset=32 (local.get $at)) (i32x4.add (i32x4.shl (local.get $a2) (i32.const 7)) (local.get $c2))))
        (v128.store offset=48 (local.get $at) (i32x4.add (v128.load offset=48 (local.get $at)) (i32x4.add (i32x4.shl (local.get $a3) (i32.const 7)) (local.get $c3))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $blocks (i32.lt_u (local.get $i) (local.get $len)))))))
