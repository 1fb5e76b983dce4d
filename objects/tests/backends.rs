//! The object store seam against both backends: a real local directory, and a real
//! S3-compatible server process (moto in server mode, on a free port, addressed path-style as
//! MinIO, OSS or COS would be). Same checks on each: content-checked puts under generated keys,
//! whole and ranged gets, heads, deletes, and the refusals (renamed executables, oversize files,
//! bad keys) that store nothing.

use bytes::Bytes;
use hospital_objects::{ContentType, ObjectError, Objects, Policy, S3Config};
use hospital_testkit::S3Server;

/// A PNG signature followed by `len - 8` bytes of a pattern (the checks read the first bytes).
fn png(len: usize) -> Bytes {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend((0..len - 8).map(|i| (i * 7 % 251) as u8));
    Bytes::from(v)
}

async fn exercise(objects: Objects) {
    let images = Policy::images(64 * 1024);
    let body = png(50_000);
    let stored = objects.put("chat/2026-05", body.clone(), Some("image/png"), &images).await.unwrap();
    assert!(stored.key.starts_with("chat/2026-05/") && stored.key.ends_with(".png"), "{}", stored.key);
    assert_eq!((stored.content_type, stored.size), (ContentType::Png, 50_000));
    assert_eq!(ContentType::of_key(&stored.key), Some(ContentType::Png), "the key carries the checked type");

    let info = objects.head(&stored.key).await.unwrap();
    assert_eq!(info.size, 50_000);
    assert!(info.etag.as_deref().is_some_and(|t| !t.is_empty() && !t.contains('"')), "{info:?}");

    let whole = objects.get(&stored.key, None).await.unwrap();
    assert_eq!(whole.range, 0..50_000);
    assert_eq!(whole.bytes().await.unwrap(), body);

    let part = objects.get(&stored.key, Some(1000..1010)).await.unwrap();
    assert_eq!((part.range.clone(), part.info.size), (1000..1010, 50_000));
    assert_eq!(part.bytes().await.unwrap(), body.slice(1000..1010));
    let tail = objects.get(&stored.key, Some(49_990..50_000)).await.unwrap();
    assert_eq!(tail.bytes().await.unwrap(), body.slice(49_990..));

    // Two puts of the same bytes are two objects: keys are never reused.
    let again = objects.put("chat/2026-05", body.clone(), None, &images).await.unwrap();
    assert_ne!(again.key, stored.key);

    // Refusals store nothing and say why.
    let mut elf = b"\x7FELF\x02\x01\x01\0".to_vec();
    elf.resize(4096, 0);
    assert!(matches!(
        objects.put("chat/2026-05", elf.into(), Some("image/png"), &images).await,
        Err(ObjectError::Executable("an ELF executable"))
    ));
    assert!(matches!(
        objects.put("chat/2026-05", png(64 * 1024 + 1), Some("image/png"), &images).await,
        Err(ObjectError::TooLarge { max: 65536 })
    ));
    let mut dicom = vec![0u8; 128];
    dicom.extend_from_slice(b"DICM");
    dicom.resize(2000, 1);
    assert!(matches!(
        objects.put("chat/2026-05", dicom.clone().into(), None, &images).await,
        Err(ObjectError::Unsupported { .. })
    ));
    let report = objects.put("reports/p1", dicom.into(), None, &Policy::reports(1 << 20)).await.unwrap();
    assert!(report.key.ends_with(".dcm"));
    assert!(matches!(objects.put("../escape", png(100), None, &images).await, Err(ObjectError::BadKey(_))));
    assert!(matches!(objects.get("chat/../../etc/passwd", None).await, Err(ObjectError::BadKey(_))));

    // Deletes: gone for head and get; deleting twice is fine.
    objects.delete(&stored.key).await.unwrap();
    assert!(matches!(objects.head(&stored.key).await, Err(ObjectError::NotFound)));
    assert!(matches!(objects.get(&stored.key, None).await, Err(ObjectError::NotFound)));
    objects.delete(&stored.key).await.unwrap();
    assert!(objects.head(&again.key).await.is_ok(), "only that object went");
}

#[tokio::test]
async fn local_directory() {
    let dir = tempfile::tempdir().unwrap();
    exercise(Objects::local(&dir.path().join("objects")).unwrap()).await;
    // The files really are in the directory, under their keys.
    let chat = dir.path().join("objects/chat/2026-05");
    assert_eq!(std::fs::read_dir(chat).unwrap().count(), 1, "one image left after the delete");
}

#[tokio::test]
async fn s3_compatible_server() {
    let server = tokio::task::spawn_blocking(|| S3Server::start("hospital-test")).await.unwrap();
    let objects = Objects::s3(&S3Config {
        endpoint: Some(server.endpoint()),
        bucket: server.bucket.clone(),
        region: "us-east-1".into(),
        access_key_id: "test-key".into(),
        secret_access_key: "test-secret".to_string().into(),
        path_style: true,
    })
    .unwrap();
    exercise(objects.clone()).await;

    // A bucket that does not exist is an error of the backend, not "not found".
    let missing = Objects::s3(&S3Config {
        endpoint: Some(server.endpoint()),
        bucket: "no-such-bucket".into(),
        region: "us-east-1".into(),
        access_key_id: "test-key".into(),
        secret_access_key: "test-secret".to_string().into(),
        path_style: true,
    })
    .unwrap();
    let r = missing.put("chat/x", png(100), None, &Policy::images(1000)).await;
    assert!(matches!(r, Err(ObjectError::Backend(_)) | Err(ObjectError::NotFound)), "{r:?}");
}
