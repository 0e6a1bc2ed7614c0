/**
 * DICOM in the viewer: a series folder (a directory input or dropped files)
 * or a zip of one, converted to NIfTI in the browser by dcm2niix (its wasm
 * build, @niivue/dcm2niix, in a worker of its own per series: the files
 * never leave the machine), for NiiVue to show and the model to segment. Several series
 * in the input give several volumes: the one with the most voxels is shown,
 * and the others are named. A zip is unpacked with fflate, its entries'
 * inflated sizes checked against a limit before any is inflated (zip
 * bombs).
 */
/// <reference path="./dcm2niix.d.ts" />
import { Dcm2niix } from '@niivue/dcm2niix';
import { unzip, type UnzipFileInfo } from 'fflate';

/** The most a zip may inflate to. */
export const MAX_UNZIPPED_BYTES = 2 * 1024 ** 3;

/** A file as if picked from a folder: dcm2niix keeps the relative path. */
function withPath(file: File, path: string): File {
  Object.defineProperty(file, '_webkitRelativePath', { value: path });
  return file;
}

/** The files of a zip (folders flattened into their names), refused whole if it would inflate past the limit. */
export async function filesOfZip(zip: File, limit = MAX_UNZIPPED_BYTES): Promise<File[]> {
  const bytes = new Uint8Array(await zip.arrayBuffer());
  let total = 0;
  let tooLarge = false;
  const entries = await new Promise<Record<string, Uint8Array>>((resolve, reject) =>
    unzip(
      bytes,
      {
        filter: (f: UnzipFileInfo) => {
          if (f.name.endsWith('/')) return false;
          total += f.originalSize;
          if (total > limit) tooLarge = true;
          return !tooLarge;
        },
      },
      (err, data) => (err ? reject(new Error(`${zip.name} is not a readable zip (${err.message})`)) : resolve(data)),
    ),
  );
  if (tooLarge) throw new Error(`${zip.name} would unpack to more than ${Math.round(limit / 1024 ** 2)} MiB: refused`);
  const files = Object.entries(entries).map(([name, data]) => withPath(new File([data as Uint8Array<ArrayBuffer>], name.split('/').pop()!), name));
  if (!files.length) throw new Error(`${zip.name} holds no files`);
  return files;
}

export interface ConvertedSeries {
  /** The NIfTI of the largest series. */
  volume: File;
  /** Every volume dcm2niix made (one per series, or per echo or orientation within one). */
  all: File[];
}

/** A DICOM series (folder files) as a NIfTI volume; an error names what dcm2niix found when it made none. */
export async function dicomToNifti(files: File[]): Promise<ConvertedSeries> {
  // A converter per series: dcm2niix's worker keeps its input and output folders after a run, so a second run in it fails.
  const d = new Dcm2niix();
  let out: File[];
  try {
    await d.init();
    out = await d.input(files).b('n').z('n').f('%s_%d').run();
  } catch (e) {
    throw new Error(`dcm2niix could not convert the ${files.length} file(s): ${(e as Error).message || (e as Error).name || 'no reason given'}`);
  } finally {
    d.worker?.terminate();
  }
  const volumes = out.filter((f) => /\.nii(\.gz)?$/i.test(f.name));
  if (!volumes.length) throw new Error(`no image series found in ${files.length} file(s) (dcm2niix made ${out.map((f) => f.name).join(', ') || 'nothing'})`);
  const volume = volumes.reduce((a, b) => (b.size > a.size ? b : a));
  return { volume, all: volumes };
}
