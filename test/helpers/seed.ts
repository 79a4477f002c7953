// The fixed fast-check seed every property test uses (override with LORAKIT_SEED to replay another).
export const SEED = Number(process.env.LORAKIT_SEED ?? 20261128);
