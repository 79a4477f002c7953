// Chooses the kernel for a call. Today every dtype and shape goes to the plain TypeScript kernels; faster
// kernels register here and must hand shapes they cannot tile back to the scalar ones.

import type { AddLowRankKernel, GemmKernel } from "./contract.js";
import { addLowRankScalar, gemmScalar } from "./scalar.js";

/** The GEMM used by the ops. */
export const gemm: GemmKernel = gemmScalar;

/** The LoRA epilogue used by the ops. */
export const addLowRank: AddLowRankKernel = addLowRankScalar;
