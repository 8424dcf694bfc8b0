//! Geohash arithmetic as Redis computes it (`geohash.c`,
//! `geohash_helper.c`): 52-bit interleaved cell ids over
//! longitude [-180, 180] × latitude [-85.05112878, 85.05112878], the nine
//! cells a radius or box search scans, and haversine distances. Every
//! operation is done in the same order, with the same types and the same
//! libm calls as Redis, so that scores, decoded coordinates, distances and
//! the cell choice are bit-for-bit Redis's: the GEO commands' replies
//! (and which points a search finds) depend on them.
//!
//! Pure functions: no keyspace, no RESP.

// Comparisons are written as the C code writes them (a NaN fails each
// one), not as range checks, where the two could ever differ.
#![allow(clippy::manual_range_contains)]

pub const STEP_MAX: u8 = 26;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;

const D_R: f64 = std::f64::consts::PI / 180.0;
/// Earth's quadratic mean radius for WGS-84, in meters.
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bits {
    pub bits: u64,
    pub step: u8,
}

impl Bits {
    /// Redis's HASHISZERO: a neighbour excluded from the scan.
    pub fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Area {
    pub longitude: Range,
    pub latitude: Range,
}

/// The WGS84 ranges the scores use.
pub const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
pub const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let mut x = xlo as u64;
    let mut y = ylo as u64;
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let mut x = interleaved;
    let mut y = interleaved >> 1;
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// `geohashEncode`: the cell of (longitude, latitude) at `step` bits per
/// axis within the given ranges, or None outside the WGS84 limits.
pub fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<Bits> {
    if step > 32 || step == 0 {
        return None;
    }
    // NaN fails every comparison here, as in C, but never gets this far:
    // arguments are parsed refusing NaN.
    if longitude > LONG_MAX || longitude < LONG_MIN || latitude > LAT_MAX || latitude < LAT_MIN {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let mut lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
    lat_offset *= (1u64 << step) as f64;
    long_offset *= (1u64 << step) as f64;
    Some(Bits {
        bits: interleave64(lat_offset as u32, long_offset as u32),
        step,
    })
}

/// `geohashEncodeWGS84`.
pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<Bits> {
    encode(LONG_RANGE, LAT_RANGE, longitude, latitude, step)
}

/// `geohashDecode`: the cell's bounds.
pub fn decode(long_range: Range, lat_range: Range, hash: Bits) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let step = hash.step;
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << step) as f64;
    // `ilato + 1` is uint32 arithmetic in C: it wraps.
    Some(Area {
        latitude: Range {
            min: lat_range.min + (ilato as f64 * 1.0 / div) * lat_scale,
            max: lat_range.min + (ilato.wrapping_add(1) as f64 * 1.0 / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (ilono as f64 * 1.0 / div) * long_scale,
            max: long_range.min + (ilono.wrapping_add(1) as f64 * 1.0 / div) * long_scale,
        },
    })
}

/// A sorted-set score as the 64 bits Redis reads from it: C's
/// `(uint64_t)score` as gcc compiles it for x86-64 (values from 2^63 up
/// are offset; negative ones keep their two's-complement bits; what the
/// instruction cannot convert becomes 2^63, or 0 above 2^64).
pub fn score_bits(score: f64) -> u64 {
    const TWO63: f64 = 9223372036854775808.0;
    fn cvtt(d: f64) -> u64 {
        // cvttsd2si: truncation, 0x8000000000000000 when out of range.
        if d.is_nan() || d >= TWO63 || d < -TWO63 {
            0x8000_0000_0000_0000
        } else {
            (d as i64) as u64
        }
    }
    // `comisd` with NaN sets CF, so NaN takes the first branch.
    if score.is_nan() || score < TWO63 {
        cvtt(score)
    } else {
        cvtt(score - TWO63) ^ 0x8000_0000_0000_0000
    }
}

/// `decodeGeohash`: the centre of a score's cell, [longitude, latitude].
pub fn decode_score(score: f64) -> Option<[f64; 2]> {
    let area = decode(
        LONG_RANGE,
        LAT_RANGE,
        Bits {
            bits: score_bits(score),
            step: STEP_MAX,
        },
    )?;
    // Clamped to the limits, as `geohashDecodeAreaToLongLat` does (a
    // score that is no geohash can decode anywhere).
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    Some([lon, lat])
}

/// The score GEOADD stores: the 26-step cell aligned to 52 bits.
pub fn score_of(longitude: f64, latitude: f64) -> Option<u64> {
    encode_wgs84(longitude, latitude, STEP_MAX).map(align52)
}

/// `geohashAlign52Bits`.
pub fn align52(hash: Bits) -> u64 {
    hash.bits << (52 - hash.step as u32 * 2)
}

/// GEOHASH's 11-character standard geohash of a score (re-encoded with
/// latitude [-90, 90]; the 11th character stands for bits Redis does not
/// have, always '0').
pub fn standard_geohash(score: f64) -> Option<[u8; 11]> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let xy = decode_score(score)?;
    // geohashEncode's own limit check runs on the decoded point: a score
    // that decodes outside the WGS84 limits leaves the hash at 0 bits.
    let bits = encode(
        Range {
            min: -180.0,
            max: 180.0,
        },
        Range {
            min: -90.0,
            max: 90.0,
        },
        xy[0],
        xy[1],
        26,
    )
    .map_or(0, |h| h.bits);
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().enumerate().take(10) {
        let idx = (bits >> (52 - (i + 1) * 5)) & 0x1f;
        *c = ALPHABET[idx as usize];
    }
    Some(out)
}

/// Moves `hash` one cell along the axis whose bits are `mask` (the odd
/// bits 0xaaaa... for longitude, the even bits 0x5555... for latitude):
/// the axis's bits are incremented or decremented as one number, with the
/// other axis's bits filled in (ones or zeros) to carry across them.
fn move_axis(hash: &mut Bits, d: i8, mask: u64) {
    if d == 0 {
        return;
    }
    let mut a = hash.bits & mask;
    let other = hash.bits & !mask;
    let shift = 64 - hash.step as u32 * 2;
    let zz = !mask >> shift;
    if d > 0 {
        a = a.wrapping_add(zz + 1);
    } else {
        a |= zz;
        a = a.wrapping_sub(zz + 1);
    }
    a &= mask >> shift;
    hash.bits = a | other;
}

fn move_x(hash: &mut Bits, d: i8) {
    move_axis(hash, d, 0xaaaaaaaaaaaaaaaa);
}

fn move_y(hash: &mut Bits, d: i8) {
    move_axis(hash, d, 0x5555555555555555);
}

/// The eight neighbours of a cell.
#[derive(Clone, Copy, Debug, Default)]
pub struct Neighbors {
    pub north: Bits,
    pub east: Bits,
    pub west: Bits,
    pub south: Bits,
    pub north_east: Bits,
    pub south_east: Bits,
    pub north_west: Bits,
    pub south_west: Bits,
}

fn moved(h: &Bits, dx: i8, dy: i8) -> Bits {
    let mut b = *h;
    move_x(&mut b, dx);
    move_y(&mut b, dy);
    b
}

fn neighbors(h: &Bits) -> Neighbors {
    Neighbors {
        east: moved(h, 1, 0),
        west: moved(h, -1, 0),
        south: moved(h, 0, -1),
        north: moved(h, 0, 1),
        north_west: moved(h, -1, 1),
        north_east: moved(h, 1, 1),
        south_east: moved(h, 1, -1),
        south_west: moved(h, -1, -1),
    }
}

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// `geohashEstimateStepsByRadius`.
fn estimate_steps(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    // An infinite or NaN radius: the loop ends at once (NaN < x is
    // false), as in C; a tiny one ends within ~1100 doublings.
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if lat > 66.0 || lat < -66.0 {
        step -= 1;
        if lat > 80.0 || lat < -80.0 {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// A search area: a circle of `radius` or a `width` × `height` box
/// (in the unit given by `conversion`, meters per unit) around `xy`.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub xy: [f64; 2],
    pub conversion: f64,
    pub kind: ShapeKind,
}

#[derive(Clone, Copy, Debug)]
pub enum ShapeKind {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// `geohashBoundingBox`: [min lon, min lat, max lon, max lat].
fn bounding_box(s: &Shape) -> [f64; 4] {
    let [longitude, latitude] = s.xy;
    let (height, width) = match s.kind {
        ShapeKind::Radius(r) => (s.conversion * r, s.conversion * r),
        ShapeKind::Box { width, height } => {
            (s.conversion * (height / 2.0), s.conversion * (width / 2.0))
        }
    };
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
    let long_delta_bottom =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
    let southern = latitude < 0.0;
    let (lo, hi) = if southern {
        (longitude - long_delta_bottom, longitude + long_delta_bottom)
    } else {
        (longitude - long_delta_top, longitude + long_delta_top)
    };
    [lo, latitude - lat_delta, hi, latitude + lat_delta]
}

/// `geohashCalculateAreasByShapeWGS84`: the cells to scan, in Redis's
/// order (centre, N, S, E, W, NE, NW, SE, SW); excluded ones are zero.
pub fn areas_for(s: &Shape) -> [Bits; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(s);
    let [longitude, latitude] = s.xy;
    let radius_meters = match s.kind {
        ShapeKind::Radius(r) => r,
        ShapeKind::Box { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * s.conversion;
    let mut steps = estimate_steps(radius_meters, latitude);
    // The centre is a valid point (parsed or decoded), so encoding works;
    // a zero hash stands in if it ever did not, as C's zeroed struct.
    let enc = |steps| encode_wgs84(longitude, latitude, steps).unwrap_or_default();
    let dec = |h| decode(LONG_RANGE, LAT_RANGE, h).unwrap_or_default();
    let mut hash = enc(steps);
    let mut nb = neighbors(&hash);
    let mut area = dec(hash);
    let decrease = dec(nb.north).latitude.max < max_lat
        || dec(nb.south).latitude.min > min_lat
        || dec(nb.east).longitude.max < max_lon
        || dec(nb.west).longitude.min > min_lon;
    if steps > 1 && decrease {
        steps -= 1;
        hash = enc(steps);
        nb = neighbors(&hash);
        area = dec(hash);
    }
    if steps >= 2 {
        let zero = Bits::default();
        if area.latitude.min < min_lat {
            nb.south = zero;
            nb.south_west = zero;
            nb.south_east = zero;
        }
        if area.latitude.max > max_lat {
            nb.north = zero;
            nb.north_east = zero;
            nb.north_west = zero;
        }
        if area.longitude.min < min_lon {
            nb.west = zero;
            nb.south_west = zero;
            nb.north_west = zero;
        }
        if area.longitude.max > max_lon {
            nb.east = zero;
            nb.south_east = zero;
            nb.north_east = zero;
        }
    }
    [
        hash,
        nb.north,
        nb.south,
        nb.east,
        nb.west,
        nb.north_east,
        nb.north_west,
        nb.south_east,
        nb.south_west,
    ]
}

/// The score interval [min, max) of a cell's points.
pub fn score_range(hash: Bits) -> (u64, u64) {
    let min = align52(hash);
    let max = align52(Bits {
        bits: hash.bits.wrapping_add(1),
        step: hash.step,
    });
    (min, max)
}

/// `geohashGetLatDistance`.
fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// `geohashGetDistance`: haversine, in meters (the latitude difference
/// alone when the longitudes' half-difference has a zero sine, as
/// Redis 7.0.15 shortcuts it).
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// `geoWithinShape` for a decoded point: its distance from the centre
/// when inside the shape.
pub fn within(s: &Shape, xy: [f64; 2]) -> Option<f64> {
    let [x1, y1] = s.xy;
    let [x2, y2] = xy;
    match s.kind {
        ShapeKind::Radius(r) => {
            let d = distance(x1, y1, x2, y2);
            // `d > radius` rejects; a NaN distance is kept, as in C.
            if d > r * s.conversion {
                None
            } else {
                Some(d)
            }
        }
        ShapeKind::Box { width, height } => {
            let (w, h) = (width * s.conversion, height * s.conversion);
            if lat_distance(y2, y1) > h / 2.0 {
                return None;
            }
            if distance(x2, y2, x1, y2) > w / 2.0 {
                return None;
            }
            Some(distance(x1, y1, x2, y2))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_round_trips() {
        for (x, y) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ffffff, 0x1234567),
            (u32::MAX, 7),
        ] {
            let d = deinterleave64(interleave64(x, y));
            assert_eq!((d as u32, (d >> 32) as u32), (x, y));
        }
    }

    #[test]
    fn scores_match_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo" 15.087269 37.502669
        // "Catania"; ZSCORE in redis-server 7.0.
        assert_eq!(score_of(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(score_of(15.087269, 37.502669), Some(3479447370796909));
        let p = decode_score(3479099956230698.0).unwrap();
        assert_eq!(format!("{:.17}", p[0]), "13.36138933897018433");
        assert_eq!(format!("{:.17}", p[1]), "38.11555639549629859");
        assert_eq!(
            &standard_geohash(3479099956230698.0).unwrap(),
            b"sqc8b49rny0"
        );
        let c = decode_score(3479447370796909.0).unwrap();
        let d = distance(p[0], p[1], c[0], c[1]);
        assert_eq!(format!("{d:.4}"), "166274.1516");
    }

    #[test]
    fn score_bits_as_x86_64_gcc() {
        assert_eq!(score_bits(5.9), 5);
        assert_eq!(score_bits(-1.0), u64::MAX);
        assert_eq!(score_bits(f64::INFINITY), 0);
        assert_eq!(score_bits(f64::NEG_INFINITY), 1 << 63);
        assert_eq!(score_bits(9223372036854775808.0), 1 << 63);
        assert_eq!(score_bits(1e30), 0);
    }
}
