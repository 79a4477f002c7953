// The mission's worked examples (x, W, B, A, alpha) and one with a deliberate shape error.

export interface Example {
  id: string;
  label: string;
  x: number[][];
  W: number[][];
  B: number[][];
  A: number[][];
  alpha: number;
}

const I2 = [
  [1, 0],
  [0, 1],
];

export const EXAMPLES: readonly Example[] = [
  { id: "first", label: "x = [1, 2], W = I₂", x: [[1, 2]], W: I2, B: [[1], [1]], A: [[0.5, 0.5]], alpha: 2 },
  {
    id: "rank2",
    label: "x = I₂, rank 2",
    x: I2,
    W: [
      [2, 1],
      [1, 2],
    ],
    B: [
      [0.5, 0.5],
      [0.5, 0.5],
    ],
    A: I2,
    alpha: 1,
  },
  { id: "scalar", label: "1 × 1", x: [[2]], W: [[3]], B: [[1]], A: [[1]], alpha: 4 },
  {
    id: "identity3",
    label: "x = I₃, W = ones",
    x: [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ],
    W: [
      [1, 1],
      [1, 1],
      [1, 1],
    ],
    B: [[1], [2], [3]],
    A: [[0.1, 0.2]],
    alpha: 1,
  },
  { id: "bad", label: "A with a wrong shape", x: [[1, 2]], W: I2, B: [[1], [1]], A: [[0.5, 0.5, 0.5]], alpha: 2 },
];
