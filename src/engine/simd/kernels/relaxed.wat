;; int8 × int7 matrix products with relaxed SIMD's i32x4.relaxed_dot_i8x16_i7x16_add_s: 16
;; multiply-adds and the accumulation in one instruction, against four for i32x4.dot_i16x8_s. A
;; separate module because Debian's clang 14 cannot emit it; the C kernels import gemm from here
;; when the runtime validates this module (workerd, Deno, Node with --experimental-wasm-relaxed-simd).
;;
;; y[r][o] = (Σ_k a[r][k] · w[o][k] − 64 · asum[r]) · ws[o] · as[r]
;;   a: activations, int8 [rows][n] (scale as[r], lane sum asum[r]); w: weights stored as w + 64
;;   (0..127, the instruction's unsigned 7-bit operand) [n_out][n], scale ws[o]; y: f32 with row
;;   stride ldy floats. Needs n % 16 == 0 and n_out % 4 == 0. The products of one lane pair stay
;;   below 2 · 127 · 127 < 2^15, so the instruction's 16-bit intermediate never saturates.
;; Loops: 4 weight rows (≤ 4 · n bytes, in L1) against every activation row, then the next 4.
(module
  (import "env" "memory" (memory 1))
  (func (export "gemm")
    (param $y i32) (param $ldy i32) (param $a i32) (param $as i32) (param $asum i32) (param $rows i32)
    (param $w i32) (param $ws i32) (param $nout i32) (param $n i32)
    (local $o i32) (local $r i32) (local $k i32) (local $ar i32)
    (local $w0 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128) (local $x v128) (local $ab v128) (local $cd v128)
    (loop $outputs
      (local.set $w0 (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $n))))
      (local.set $w1 (i32.add (local.get $w0) (local.get $n)))
      (local.set $w2 (i32.add (local.get $w1) (local.get $n)))
      (local.set $w3 (i32.add (local.get $w2) (local.get $n)))
      (local.set $r (i32.const 0))
      (loop $activation_rows
        (local.set $ar (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $n))))
        (local.set $c0 (v128.const i32x4 0 0 0 0))
        (local.set $c1 (v128.const i32x4 0 0 0 0))
        (local.set $c2 (v128.const i32x4 0 0 0 0))
        (local.set $c3 (v128.const i32x4 0 0 0 0))
        (local.set $k (i32.const 0))
        (loop $inner
          (local.set $x (v128.load (i32.add (local.get $ar) (local.get $k))))
          (local.set $c0 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (v128.load (i32.add (local.get $w0) (local.get $k))) (local.get $c0)))
          (local.set $c1 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (v128.load (i32.add (local.get $w1) (local.get $k))) (local.get $c1)))
          (local.set $c2 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (v128.load (i32.add (local.get $w2) (local.get $k))) (local.get $c2)))
          (local.set $c3 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (v128.load (i32.add (local.get $w3) (local.get $k))) (local.get $c3)))
          (local.set $k (i32.add (local.get $k) (i32.const 16)))
          (br_if $inner (i32.lt_u (local.get $k) (local.get $n))))
        ;; The four lane sums as one vector: [Σc0, Σc1, Σc2, Σc3].
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
            (f32x4.splat (f32.load (i32.add (local.get $as) (i32.shl (local.get $r) (i32.const 2)))))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br_if $activation_rows (i32.lt_u (local.get $r) (local.get $rows))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br_if $outputs (i32.lt_u (local.get $o) (local.get $nout))))))
