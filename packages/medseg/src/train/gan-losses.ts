/**
 * Adversarial losses of the conditional GAN, on the discriminator's raw
 * patch scores (means over every patch and batch item):
 * - LSGAN (Mao et al. 2017): D minimises 1/2 [E (D(real) - 1)^2 + E D(fake)^2],
 *   G minimises E (D(fake) - 1)^2.
 * - hinge (Lim & Ye 2017, as in SAGAN / BigGAN): D minimises
 *   E max(0, 1 - D(real)) + E max(0, 1 + D(fake)), G minimises -E D(fake).
 * The generator adds pix2pix's L1 term, lambda * E |fake - real|.
 */
import type { Tensor } from '@medseg/torch';

export type GanLoss = 'lsgan' | 'hinge';

export function discriminatorLoss(kind: GanLoss, real: Tensor, fake: Tensor): Tensor {
  if (kind === 'lsgan') return real.sub(1).square().mean().add(fake.square().mean()).mul(0.5);
  return real.rsub(1).relu().mean().add(fake.add(1).relu().mean());
}

export function generatorAdversarialLoss(kind: GanLoss, fake: Tensor): Tensor {
  if (kind === 'lsgan') return fake.sub(1).square().mean();
  return fake.mean().neg();
}

/** The generator's whole loss: adversarial + lambda * L1 to the real image. */
export function generatorLoss(
  kind: GanLoss,
  fakeScores: Tensor,
  fakeImage: Tensor,
  realImage: Tensor,
  lambda = 100,
): { total: Tensor; adversarial: Tensor; l1: Tensor } {
  const adversarial = generatorAdversarialLoss(kind, fakeScores);
  const l1 = fakeImage.sub(realImage).abs().mean();
  return { total: adversarial.add(l1.mul(lambda)), adversarial, l1 };
}
