"""Independent references for the DICOM tests: pydicom + numpy only.

Usage: /usr/bin/python3 dicom_ref.py '<json list of jobs>' ; prints one JSON list of results.
Each job: {"op": ..., "out": raw output path (optional), ...}.
"""
import gzip, json, sys
import numpy as np
import pydicom


def series(files):
    ds = [pydicom.dcmread(f) for f in files]
    iop = np.array([float(x) for x in ds[0].ImageOrientationPatient])
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    ds.sort(key=lambda d: float(np.dot(normal, [float(x) for x in d.ImagePositionPatient])))
    vol = np.stack([d.pixel_array.astype(np.float64) * float(getattr(d, 'RescaleSlope', 1)) + float(getattr(d, 'RescaleIntercept', 0)) for d in ds])
    pos = [np.dot(normal, [float(x) for x in d.ImagePositionPatient]) for d in ds]
    ps = [float(x) for x in ds[0].PixelSpacing]
    return vol, {
        'size': [int(ds[0].Columns), int(ds[0].Rows), len(ds)],
        'origin': [float(x) for x in ds[0].ImagePositionPatient],
        'spacing': [ps[1], ps[0], float(np.mean(np.diff(pos))) if len(pos) > 1 else 1.0],
        'direction': np.stack([row, col, normal], axis=1).ravel().tolist(),
        'sop': [str(d.SOPInstanceUID) for d in ds],
    }


def multiframe(path):
    d = pydicom.dcmread(path)
    arr = d.pixel_array.astype(np.float64)
    shared = d.SharedFunctionalGroupsSequence[0]
    iop = np.array([float(x) for x in shared.PlaneOrientationSequence[0].ImageOrientationPatient])
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    ipps = [np.array([float(x) for x in f.PlanePositionSequence[0].ImagePositionPatient]) for f in d.PerFrameFunctionalGroupsSequence]
    order = np.argsort([np.dot(normal, p) for p in ipps])
    pvt = shared.PixelValueTransformationSequence[0]
    vol = arr[order] * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)
    pos = [np.dot(normal, ipps[i]) for i in order]
    ps = [float(x) for x in shared.PixelMeasuresSequence[0].PixelSpacing]
    return vol, {
        'size': [int(d.Columns), int(d.Rows), len(order)],
        'origin': ipps[order[0]].tolist(),
        'spacing': [ps[1], ps[0], float(np.mean(np.diff(pos)))],
        'direction': np.stack([row, col, normal], axis=1).ravel().tolist(),
    }


def nrrd(path):
    b = open(path, 'rb').read()
    i = b.index(b'\n\n')
    fields = {}
    for line in b[:i].decode('latin1').split('\n')[1:]:
        if ': ' in line and not line.startswith('#'):
            k, v = line.split(': ', 1)
            fields[k.strip()] = v.strip()
    data = b[i + 2:]
    if fields.get('encoding') == 'gzip':
        data = gzip.decompress(data)
    types = {'short': '<i2', 'unsigned char': 'u1', 'uchar': 'u1', 'ushort': '<u2', 'unsigned short': '<u2', 'int': '<i4'}
    sizes = [int(x) for x in fields['sizes'].split()]
    arr = np.frombuffer(data, dtype=types[fields['type']]).reshape(sizes[::-1])
    return arr.astype(np.float64), {'size': sizes}


def seginfo(path):
    d = pydicom.dcmread(path)
    frames = []
    for f in d.PerFrameFunctionalGroupsSequence:
        ref = f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        seg = int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        pos = [float(x) for x in f.PlanePositionSequence[0].ImagePositionPatient]
        frames.append({'ref': str(ref), 'segment': seg, 'position': pos})
    arr = d.pixel_array
    if int(d.NumberOfFrames) == 1:
        arr = arr[None]
    return arr.astype(np.float64), {
        'sopClassUID': str(d.SOPClassUID),
        'numberOfFrames': int(d.NumberOfFrames),
        'segments': [{'number': int(s.SegmentNumber), 'label': str(s.SegmentLabel), 'lab': [int(x) for x in s.RecommendedDisplayCIELabValue]} for s in d.SegmentSequence],
        'frames': frames,
        'patientID': str(d.get('PatientID', '')),
        'studyInstanceUID': str(d.StudyInstanceUID),
        'seriesInstanceUID': str(d.SeriesInstanceUID),
        'frameOfReferenceUID': str(d.FrameOfReferenceUID),
        'segmentationType': str(d.SegmentationType),
    }


def main():
    jobs = json.loads(sys.argv[1])
    results = []
    for job in jobs:
        op = job['op']
        if op == 'series':
            vol, info = series(job['files'])
        elif op == 'multiframe':
            vol, info = multiframe(job['file'])
        elif op == 'nrrd':
            vol, info = nrrd(job['file'])
        elif op == 'seginfo':
            vol, info = seginfo(job['file'])
        elif op == 'dump':
            d = pydicom.dcmread(job['file'])
            info = {k: str(d.get(k, '')) for k in job['keywords']}
            info['private'] = sum(1 for e in d.iterall() if e.tag.is_private)
            vol = None
        else:
            raise ValueError(op)
        if vol is not None and job.get('out'):
            np.ascontiguousarray(vol, dtype='<f4').tofile(job['out'])
        results.append(info)
    print(json.dumps(results))


if __name__ == '__main__':
    main()
