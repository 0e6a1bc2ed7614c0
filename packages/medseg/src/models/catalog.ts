/**
 * The architectures medseg can build, by name, with their kind and a line of
 * description: what a CLI help text or a model card lists. Free of the engine,
 * so listing costs nothing; models/registry.ts builds them.
 */

export type ArchitectureType = 'CNN' | 'CNN+attention' | 'CNN+transformer' | 'transformer';

export interface ArchitectureEntry {
  name: string;
  type: ArchitectureType;
  description: string;
}

export const ARCHITECTURES: readonly ArchitectureEntry[] = [
  {
    name: 'unet',
    type: 'CNN',
    description: 'nnU-Net PlainConvUNet: two conv-norm-LeakyReLU per stage, strided conv down, transposed conv up, deep supervision',
  },
  {
    name: 'attention-unet',
    type: 'CNN+attention',
    description: 'Attention U-Net (Oktay et al.): additive attention gates on the skips, gated by coarser decoder features',
  },
  { name: 'unet++', type: 'CNN', description: 'UNet++ (Zhou et al.): nested dense skip pathways, deep supervision over the top-row nested heads' },
  { name: 'resunet', type: 'CNN', description: 'Residual U-Net: residual blocks with strided 1x1 shortcuts in every stage' },
  {
    name: 'resenc-unet',
    type: 'CNN',
    description: "nnU-Net's ResEnc U-Net: a conv stem, encoder stages of 1, 3, 4, 6, 6 ... residual blocks, one conv-norm-LeakyReLU per decoder stage",
  },
  { name: 'r2unet', type: 'CNN', description: 'R2U-Net (Alom et al.): recurrent residual conv blocks (t = 2) in every stage' },
  {
    name: 'transunet',
    type: 'CNN+transformer',
    description: 'TransUNet (Chen et al.): CNN encoder, ViT over bottleneck tokens with learned position embeddings, CNN decoder with skips',
  },
  {
    name: 'swin-unetr',
    type: 'transformer',
    description: 'Swin-UNETR (Hatamizadeh et al.): Swin window / shifted-window attention encoder with patch merging, residual conv skips and decoder',
  },
  {
    name: 'hybridnet',
    type: 'CNN+transformer',
    description:
      'Hybrid CNN-transformer: CNN stages, transformer blocks at coarse stages, CBAM + attention gates on skips, early or cross-attention multi-modal fusion, deep supervision, MC dropout',
  },
];

const ALIASES: Record<string, string> = {
  unetpp: 'unet++',
  'unet-plus-plus': 'unet++',
  swinunetr: 'swin-unetr',
  attention_unet: 'attention-unet',
  hybrid: 'hybridnet',
  resenc: 'resenc-unet',
};

export function listArchitectures(): ArchitectureEntry[] {
  return ARCHITECTURES.map((a) => ({ ...a }));
}

export function architectureInfo(name: string): ArchitectureEntry {
  const key = ALIASES[name.toLowerCase()] ?? name.toLowerCase();
  const a = ARCHITECTURES.find((x) => x.name === key);
  if (!a) throw new Error(`unknown architecture '${name}': choose one of ${ARCHITECTURES.map((x) => x.name).join(', ')}`);
  return { ...a };
}
